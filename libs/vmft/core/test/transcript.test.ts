import { test } from 'node:test';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runTranscript } from '@mr/sim';
import { Harness } from './helpers/harness.ts';

const dir = join(import.meta.dirname, '..', 'testdata');
const update = process.env['UPDATE'] === '1';

for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
  test(`transcript ${file}`, () => {
    const h = new Harness();
    runTranscript(join(dir, file), (cmd) => h.handle(cmd), { update });
  });
}
