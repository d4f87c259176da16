import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { hasCode } from '@mr/errors';
import { ERR_RECORD_FAILED, getApp, runMapTask, runReduceTask, runSequential, type InputRecord, type SkipSpec } from '../src/index.ts';
import { tempDir, writeInputs } from './helpers.ts';

const bad = getApp('bad')!;
const good = 'alpha beta\ngamma alpha\n';
const text = `${good}delta BAD-RECORD epsilon\nbeta zeta\n`;
const badOffset = Buffer.byteLength(good);

async function mapThenReduce(dir: string, skip: SkipSpec | undefined, options: Record<string, string> = {}, reduceSkip?: SkipSpec) {
  const m = await runMapTask({ app: bad, options, pieces: [{ path: 'in.txt', index: 0 }], mapIndex: 0, reduces: 1, outputDir: 'work/m', cwd: dir, skip });
  const r = await runReduceTask({ app: bad, options, reduceIndex: 0, inputs: m.files, outputDir: 'work/r', cwd: dir, skip: reduceSkip });
  return { m, r, out: await readFile(r.file, 'utf8') };
}

function failure(err: unknown): InputRecord {
  assert.equal(hasCode(err) && err.code, ERR_RECORD_FAILED.code, String(err));
  assert.ok(typeof err === 'object' && err !== null && 'record' in err);
  return err.record as InputRecord;
}

test('a map that throws names its chunk, then (per record) its line; the skipped line is left out and counted', async () => {
  const dir = await tempDir();
  await writeInputs(dir, [['in.txt', text], ['clean.txt', `${good}beta zeta\n`]]);
  // Chunk mode: the failure names the chunk (4 lines), not a record.
  const chunk = await mapThenReduce(dir, { perRecord: false, records: [] }).then(() => assert.fail('no failure'), failure);
  assert.deepEqual(chunk, { phase: 'map', input: 0, offset: 0, bytes: Buffer.byteLength(text), records: 4 });
  // Per record: exactly the bad line.
  const line = await mapThenReduce(dir, { perRecord: true, records: [] }).then(() => assert.fail('no failure'), failure);
  assert.deepEqual(line, { phase: 'map', input: 0, offset: badOffset, bytes: Buffer.byteLength('delta BAD-RECORD epsilon\n'), records: 1 });
  // Skipping it: the output is the sequential run's over the input without that line.
  const seen: InputRecord[] = [];
  const { m, r, out } = await mapThenReduce(dir, { perRecord: true, records: [line], at: (x) => void seen.push(x) });
  assert.equal(m.counters['skippedRecords'], 1);
  assert.equal(r.counters['skippedRecords'], undefined);
  assert.deepEqual(seen.map((x) => (x.phase === 'map' ? x.offset : -1)), [0, Buffer.byteLength('alpha beta\n'), badOffset + Buffer.byteLength('delta BAD-RECORD epsilon\n')]);
  const seq = await runSequential({ app: bad, inputs: ['clean.txt'], outputDir: 'seq', cwd: dir });
  assert.equal(out, await readFile(seq.file, 'utf8'));
});

test('a reduce that throws names its key group; skipping it leaves that key out', async () => {
  const dir = await tempDir();
  await writeInputs(dir, [['in.txt', good]]);
  const opts = { reduceThrow: 'beta' };
  const rec = await mapThenReduce(dir, undefined, opts, { perRecord: false, records: [] }).then(() => assert.fail('no failure'), failure);
  // Groups in byte order: alpha (0), beta (1), gamma (2).
  assert.deepEqual(rec, { phase: 'reduce', group: 1, key: 'beta' });
  const { r, out } = await mapThenReduce(dir, undefined, opts, { perRecord: true, records: [rec] });
  assert.equal(out, 'alpha 2\ngamma 1\n');
  assert.equal(r.counters['skippedRecords'], 1);
  assert.equal(r.counters['reduceInputGroups'], 3);
});

test('without skip a throw is the app error as before (no record)', async () => {
  const dir = await tempDir();
  await writeInputs(dir, [['in.txt', text]]);
  await assert.rejects(mapThenReduce(dir, undefined), (err: unknown) => !hasCode(err, ERR_RECORD_FAILED.code) && /bad record/.test(String(err)));
});
