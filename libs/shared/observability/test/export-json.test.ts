import { test } from 'node:test';
import { exportScenario } from './export-scenario.ts';

test('OTEL_EXPORTER_OTLP_PROTOCOL=http/json is honoured', (t) => exportScenario(t, 'http/json'));
