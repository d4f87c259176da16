import { test } from 'node:test';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runTranscript } from '@mr/sim';
import { Harness } from './harness.ts';

const dir = fileURLToPath(new URL('../testdata/', import.meta.url));
const update = process.env['UPDATE'] === '1';

for (const f of readdirSync(dir).filter((n) => n.endsWith('.txt')).sort()) {
  test(`transcript ${f}`, () => {
    const h = new Harness();
    runTranscript(`${dir}${f}`, h.handle, { update });
  });
}
