import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, type JournalLine } from '../src/plugins/app/journal.ts';

const all = (file: string) => Journal.open(file, (lines: Iterable<JournalLine>) => [...lines]).then(({ journal, result }) => ({ journal, lines: result }));

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mr-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'sub', 'journal.jsonl');
}

test('records appended concurrently are all durable, in order, when their promises resolve', async (t) => {
  const file = tmp(t);
  const { journal, lines } = await all(file);
  assert.deepEqual(lines, []);
  const batches: number[] = [];
  journal.onFsync = (_s, n) => batches.push(n);
  const ps = Array.from({ length: 50 }, (_, i) => journal.append([{ type: 'job-finished', jobId: `j${i}`, state: 'cancelled' }]));
  await ps[49];
  const onDisk = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).jobId);
  assert.deepEqual(onDisk, Array.from({ length: 50 }, (_, i) => `j${i}`));
  assert.ok(batches.length < 50, `appends during a write are grouped (${batches.length} fsyncs for 50 records)`);
  await journal.close();
  const again = await all(file);
  assert.equal(again.lines.length, 50);
  await again.journal.close();
});

test('a torn last line (crash mid-append) is dropped; corruption elsewhere refuses to start', async (t) => {
  const file = tmp(t);
  const { journal } = await all(file);
  await journal.append([{ type: 'boot', boot: 1 }]);
  await journal.close();
  appendFileSync(file, '{"type":"job-acc');
  const { journal: j2, lines } = await all(file);
  assert.deepEqual(lines.map((l) => l.type), ['boot']);
  await j2.append([{ type: 'boot', boot: 2 }]);
  await j2.close();
  const { journal: j3, lines: l3 } = await all(file);
  assert.deepEqual(l3.map((l: JournalLine) => l.type), ['boot', 'boot']);
  await j3.close();
  writeFileSync(file, '{"type":"boot","boot":1}\nnot json\n{"type":"boot","boot":2}\n');
  await assert.rejects(all(file), /corrupt line 2/);
});

test('replay streams lines of any length across read chunks; a missing last newline is repaired', async (t) => {
  const file = tmp(t);
  const { journal } = await all(file);
  const big = 'x'.repeat(3 * (1 << 20) + 17);
  await journal.append([{ type: 'job-finished', jobId: 'j1', state: 'failed', error: big }, { type: 'boot', boot: 2 }]);
  await journal.close();
  appendFileSync(file, '{"type":"boot","boot":3}');
  const again = await all(file);
  assert.deepEqual(again.lines.map((l) => l.type), ['job-finished', 'boot', 'boot']);
  assert.equal((again.lines[0] as { error?: string }).error, big);
  await again.journal.append([{ type: 'boot', boot: 4 }]);
  await again.journal.close();
  assert.deepEqual((await Journal.readAll(file)).map((l) => (l as { boot?: number }).boot), [undefined, 2, 3, 4]);
});

test('compaction rewrites the journal as the snapshot; records buffered before it are covered, later ones follow it', async (t) => {
  const file = tmp(t);
  const { journal } = await all(file);
  await journal.append([{ type: 'boot', boot: 1 }]);
  for (let i = 0; i < 20; i++) void journal.append([{ type: 'job-finished', jobId: `j${i}`, state: 'cancelled' }]);
  const covered = journal.append([{ type: 'job-finished', jobId: 'covered', state: 'cancelled' }]);
  const snap: JournalLine[] = [{ type: 'snapshot', boot: 1, jobSeq: 21, retired: { succeeded: 0, failed: 0, cancelled: 21 }, at: 'now' }];
  // The snapshot covers everything appended before it is taken; an append made while the rewrite is under way follows it.
  let after: Promise<void> | undefined;
  const compacted = journal.compact(() => {
    setImmediate(() => (after = journal.append([{ type: 'boot', boot: 2 }])));
    return snap;
  });
  await Promise.all([covered, compacted]);
  while (!after) await new Promise((r) => setImmediate(r));
  await after;
  assert.deepEqual(journal.size.records, 2);
  await journal.close();
  const lines = await Journal.readAll(file);
  assert.deepEqual(lines.map((l) => l.type), ['snapshot', 'boot']);
  assert.ok(!readFileSync(file, 'utf8').includes('covered'));
});
