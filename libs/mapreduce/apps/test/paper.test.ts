import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { compareBytes, getApp, planSplits, rangePartition, runMapTask, runReduceTask, runSequential, sampleSplitPoints, splitPoints, type MrApp, type PartitionerSpec } from '../src/index.ts';
import { seqOutput, tempDir, writeInputs } from './helpers.ts';

const wc = getApp('wc')!;
const sort = getApp('sort')!;

/** Words from a small vocabulary, many lines (reduce input far above a tiny memory budget). */
function text(seed: number, lines: number): string {
  const vocab = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa', 'Ω', '𝔘x', 'ÿ'];
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const w: string[] = [];
    for (let j = 0; j < 6; j++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      w.push(vocab[x % vocab.length]! + (x % 7 === 0 ? String(x % 300) : ''));
    }
    out.push(w.join(' '));
  }
  return `${out.join('\n')}\n`;
}

interface Run {
  out: Buffer[];
  counters: Record<string, number>;
}

/** Map tasks over 2 KiB splits, then every reduce, with a memory budget of `memory` bytes. */
async function run(app: MrApp, dir: string, inputs: string[], reduces: number, extra: { combine?: boolean; partitioner?: PartitionerSpec }, memory = 1 << 20): Promise<Run> {
  const work = await tempDir('mr-work-');
  const outDir = await tempDir('mr-out-');
  const sizes = await Promise.all(inputs.map(async (p) => (await stat(join(dir, p))).size));
  const counters: Record<string, number> = {};
  const add = (c: Record<string, number>): void => {
    for (const [k, v] of Object.entries(c)) counters[k] = (counters[k] ?? 0) + v;
  };
  const maps = [];
  for (const [m, split] of planSplits(app, sizes, 2048).entries()) {
    const pieces = split.map((p) => ({ path: inputs[p.input]!, index: p.input, start: p.start, end: p.end }));
    const r = await runMapTask({ app, options: {}, pieces, mapIndex: m, reduces, outputDir: work, cwd: dir, memoryBytes: memory, ...extra });
    add(r.counters);
    maps.push(r);
  }
  const out: Buffer[] = [];
  for (let r = 0; r < reduces; r++) {
    const res = await runReduceTask({ app, options: {}, reduceIndex: r, inputs: maps.map((m) => m.files[r]!), outputDir: outDir, cwd: dir, memoryBytes: memory, spillDir: work, combine: extra.combine });
    add(res.counters);
    out.push(await readFile(res.file));
  }
  return { out, counters };
}

test('combiner: runs on map output and on reduce-side spilled runs; off by option; the output is the same', async () => {
  const dir = await tempDir();
  const inputs = await writeInputs(dir, [['a.txt', text(1, 3000)], ['b.txt', text(2, 2000)]]);
  const want = (await seqOutput(wc, dir, inputs)).toString('utf8').split('\n').filter(Boolean).sort();
  // A 4 KiB budget: every reduce spills many runs.
  const on = await run(wc, dir, inputs, 2, {}, 4096);
  const off = await run(wc, dir, inputs, 2, { combine: false }, 4096);
  for (const r of [on, off]) assert.deepEqual(Buffer.concat(r.out).toString('utf8').split('\n').filter(Boolean).sort(), want);
  assert.ok(on.counters['reduceSpills']! > 4, `spills ${on.counters['reduceSpills']}`);
  assert.ok(on.counters['reduceCombineInputRecords']! > on.counters['reduceCombineOutputRecords']!, JSON.stringify(on.counters));
  assert.equal(off.counters['reduceCombineInputRecords'], undefined);
  assert.equal(off.counters['combineInputRecords'], undefined);
  // The map-side combiner shrinks what is shuffled (wc already tallies within each 4 MiB chunk; here a split's chunks are one).
  assert.ok(on.counters['shuffleBytes']! <= off.counters['shuffleBytes']!, `${on.counters['shuffleBytes']} vs ${off.counters['shuffleBytes']}`);
});

test('range partitioner: keys go to partitions in order (a property), and sort over sampled points is globally sorted and equals mr seq', async () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 40 }), fc.array(fc.string({ unit: 'binary' }), { minLength: 2, maxLength: 40 }), fc.integer({ min: 1, max: 9 }), (sample, keys, reduces) => {
      const points = splitPoints(sample, reduces, 8);
      assert.ok(points.length <= reduces - 1);
      for (let i = 1; i < points.length; i++) assert.ok(compareBytes(points[i - 1]!, points[i]!) < 0);
      const sorted = keys.slice().sort(compareBytes);
      for (let i = 1; i < sorted.length; i++) assert.ok(rangePartition(points, sorted[i - 1]!) <= rangePartition(points, sorted[i]!));
      for (const k of keys) assert.ok(rangePartition(points, k) < reduces);
    }),
  );
  const dir = await tempDir();
  const lines = (seed: number): string => text(seed, 1500).split(' ').join('\n');
  const inputs = await writeInputs(dir, [['a.txt', lines(3)], ['b.txt', lines(4)]]);
  const sizes = await Promise.all(inputs.map(async (p) => (await stat(join(dir, p))).size));
  const points = await sampleSplitPoints({ app: sort, options: {}, inputs: inputs.map((path, index) => ({ piece: { path, index }, size: sizes[index]! })), reduces: 4, cwd: dir, maxPointLength: 128 });
  assert.equal(points.length, 3, JSON.stringify(points));
  const r = await run(sort, dir, inputs, 4, { partitioner: { type: 'range', points } });
  const seq = await seqOutput(sort, dir, inputs);
  assert.equal(Buffer.concat(r.out).toString('utf8'), seq.toString('utf8'), 'the outputs concatenated in order equal the sorted sequential output');
  // Sampled points balance the partitions (no partition holds most keys).
  const keys = r.out.map((b) => b.toString('utf8').split('\n').filter(Boolean).length);
  assert.ok(Math.max(...keys) < 0.7 * keys.reduce((a, b) => a + b, 0), JSON.stringify(keys));
});

test('local debug mode: runSequential with reduces, a partitioner and the combiner writes the same files as the distributed run, with user counters', async () => {
  const dir = await tempDir();
  const inputs = await writeInputs(dir, [['a.txt', text(5, 800)], ['b.txt', text(6, 600)]]);
  const counting: MrApp = { ...wc, name: 'wc-counting', map: (f, c, emit, ctx) => { ctx.count('chunks'); return wc.map(f, c, emit, ctx); } };
  for (const partitioner of [undefined, { type: 'hash' as const }]) {
    const dist = await run(counting, dir, inputs, 3, partitioner ? { partitioner } : {});
    const out = await tempDir('mr-seq-');
    const seq = await runSequential({ app: counting, inputs, outputDir: out, cwd: dir, reduces: 3, partitioner, memoryBytes: 1 << 20 });
    assert.equal(seq.files.length, 3);
    for (let r = 0; r < 3; r++) assert.equal((await readFile(seq.files[r]!)).toString('utf8'), dist.out[r]!.toString('utf8'), `mr-out-${r}`);
    assert.equal(seq.counters['user.chunks'], 2);
    assert.equal(seq.counters['outputRecords'], dist.counters['outputRecords']);
  }
});
