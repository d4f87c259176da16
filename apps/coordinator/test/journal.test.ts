import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../src/plugins/app/journal.ts';

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mr-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'sub', 'journal.jsonl');
}

test('records appended concurrently are all durable, in order, when their promises resolve', async (t) => {
  const file = tmp(t);
  const { journal, lines } = await Journal.open(file);
  assert.deepEqual(lines, []);
  const batches: number[] = [];
  journal.onFsync = (_s, n) => batches.push(n);
  const ps = Array.from({ length: 50 }, (_, i) => journal.append([{ type: 'job-finished', jobId: `j${i}`, state: 'cancelled' }]));
  await ps[49];
  const onDisk = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).jobId);
  assert.deepEqual(onDisk, Array.from({ length: 50 }, (_, i) => `j${i}`));
  assert.ok(batches.length < 50, `appends during a write are grouped (${batches.length} fsyncs for 50 records)`);
  await journal.close();
  const again = await Journal.open(file);
  assert.equal(again.lines.length, 50);
  await again.journal.close();
});

test('a torn last line (crash mid-append) is dropped; corruption elsewhere refuses to start', async (t) => {
  const file = tmp(t);
  const { journal } = await Journal.open(file);
  await journal.append([{ type: 'boot', boot: 1 }]);
  await journal.close();
  appendFileSync(file, '{"type":"job-acc');
  const { journal: j2, lines } = await Journal.open(file);
  assert.deepEqual(lines.map((l) => l.type), ['boot']);
  await j2.append([{ type: 'boot', boot: 2 }]);
  await j2.close();
  const { journal: j3, lines: l3 } = await Journal.open(file);
  assert.deepEqual(l3.map((l) => l.type), ['boot', 'boot']);
  await j3.close();
  writeFileSync(file, '{"type":"boot","boot":1}\nnot json\n{"type":"boot","boot":2}\n');
  await assert.rejects(Journal.open(file), /corrupt line 2/);
});
