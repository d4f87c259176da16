import { test } from 'node:test';
import { exportScenario } from './export-scenario.ts';

test('spans go over OTLP http/protobuf by default, with the resource conventions, untraced polling and trace ids in logs', (t) => exportScenario(t, undefined));
