import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { hasCode } from '@mr/errors';
import { getApp, partitionOf, runMapTask, runReduceTask, runSequential, type MrApp } from '../src/index.ts';
import { cSortedLines, distributedOutput, seqOutput, tempDir, writeInputs } from './helpers.ts';

const weirdKeys = ['', 'a\nb', 'tab\there', 'cr\r', 'lone\ud800surrogate', '😀', '\u0000nul', 'x'.repeat(3_000_000), 'same'];

/** Emits tricky keys and values; reduce records what it got. */
function recorder(seen: Map<string, string[]>): MrApp {
  return {
    name: 'recorder',
    description: 'test',
    map(filename, contents, emit) {
      for (const k of weirdKeys) emit(k, `${filename}|${contents.length}|${k.slice(0, 20)}\n"\\`);
    },
    reduce(key, values) {
      seen.set(key, values.slice().sort());
      return String(values.length);
    },
  };
}

test('map writes exactly `reduces` intermediate files, empty ones included, and any key/value round-trips', async () => {
  const dir = await tempDir();
  const names = await writeInputs(dir, [['one', 'abc'], ['two', Buffer.from([0xff, 0x00])]]);
  const seen = new Map<string, string[]>();
  const app = recorder(seen);
  const reduces = 13;
  const work = join(dir, 'work');
  const maps = [];
  for (let m = 0; m < names.length; m++) maps.push(await runMapTask({ app, options: {}, input: names[m]!, mapIndex: m, reduces, outputDir: work, cwd: dir }));
  assert.deepEqual((await readdir(work)).sort(), [0, 1].flatMap((m) => Array.from({ length: reduces }, (_, r) => `mr-${m}-${r}`)).sort());
  assert.deepEqual(maps[0]!.files, Array.from({ length: reduces }, (_, r) => join(work, `mr-0-${r}`)));
  assert.equal(maps[0]!.counters['mapInputBytes'], 3);
  assert.equal(maps[0]!.counters['mapOutputRecords'], weirdKeys.length);
  const used = new Set(weirdKeys.map((k) => partitionOf(k, reduces)));
  const empty = Array.from({ length: reduces }, (_, r) => r).filter((r) => !used.has(r));
  assert.ok(empty.length > 0, 'the test needs an empty partition');
  for (const r of empty) assert.equal((await readFile(join(work, `mr-0-${r}`))).length, 0);

  for (let r = 0; r < reduces; r++) {
    const res = await runReduceTask({ app, options: {}, reduceIndex: r, inputs: maps.map((m) => m.files[r]!), outputDir: join(dir, 'out'), cwd: dir });
    assert.equal(res.file, join(dir, 'out', `mr-out-${r}`));
  }
  assert.equal(seen.size, weirdKeys.length);
  for (const k of weirdKeys) {
    assert.deepEqual(seen.get(k), [`one|3|${k.slice(0, 20)}\n"\\`, `two|2|${k.slice(0, 20)}\n"\\`]);
  }
});

test('every built-in deterministic app: map + reduce tasks over several partitions give exactly the sequential lines', async () => {
  const apps: [string, Record<string, string>][] = [['wc', {}], ['indexer', {}], ['sort', {}], ['nocrash', {}], ['grep', { pattern: '[aé]b|^$|\\d' }], ['early_exit', {}]];
  const text = fc.array(fc.constantFrom('a', 'b', 'é', '中', '𝔘', ' ', '\n', '\r\n', '1', "'", '\ufffd'), { maxLength: 120 }).map((a) => a.join(''));
  const file = fc.oneof(text.map((t) => Buffer.from(t)), fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)));
  await fc.assert(fc.asyncProperty(fc.constantFrom(...apps), fc.array(file, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 6 }), async ([name, options], files, reduces) => {
    const app = getApp(name)!;
    const dir = await tempDir();
    const names = await writeInputs(dir, files.map((b, i) => [`f${i}.txt`, b] as [string, Buffer]));
    assert.deepEqual(cSortedLines(await distributedOutput(app, dir, names, reduces, options)), cSortedLines(await seqOutput(app, dir, names, options)));
  }), { numRuns: 60 });
});

test('an output file never exists under its final name until it is complete', async () => {
  const dir = await tempDir();
  const out = join(dir, 'out');
  const final = join(out, 'mr-out-0');
  const observed: string[][] = [];
  const app: MrApp = {
    name: 'watcher',
    description: 'test',
    map(_f, _c, emit) {
      for (let i = 0; i < 3000; i++) emit(`key-${i}`, 'v'.repeat(1000)); // ~3 MB of output: several chunks
    },
    async reduce(key) {
      if (key.endsWith('0')) {
        await new Promise((r) => setImmediate(r));
        assert.equal(existsSync(final), false, 'final name visible while reducing');
        observed.push((await readdir(out)).filter((n) => n.startsWith('mr-')));
      }
      return 'x'.repeat(1000);
    },
  };
  const names = await writeInputs(dir, [['in', 'x']]);
  const { files } = await runMapTask({ app, options: {}, input: names[0]!, mapIndex: 0, reduces: 1, outputDir: join(dir, 'work'), cwd: dir });
  const res = await runReduceTask({ app, options: {}, reduceIndex: 0, inputs: files, outputDir: out, cwd: dir });
  assert.ok(observed.length > 100);
  assert.ok(observed.every((names) => names.length === 0), 'the temporary file does not match mr-*');
  assert.equal((await readFile(final, 'utf8')).split('\n').length - 1, 3000);
  assert.equal(res.counters['outputRecords'], 3000);
  assert.deepEqual(await readdir(out), ['mr-out-0'], 'no temporary file is left behind');
});

test('a failing map or reduce leaves no final and no temporary file', async () => {
  const dir = await tempDir();
  const names = await writeInputs(dir, [['in', 'hello world']]);
  const failingMap: MrApp = { name: 'fm', description: 't', map(_f, _c, emit) { emit('a', '1'); throw new Error('map broke'); }, reduce: () => '' };
  await assert.rejects(runMapTask({ app: failingMap, options: {}, input: names[0]!, mapIndex: 0, reduces: 3, outputDir: join(dir, 'w1'), cwd: dir }), /map broke/);
  assert.deepEqual(await readdir(join(dir, 'w1')), []);

  const wc = getApp('wc')!;
  const { files } = await runMapTask({ app: wc, options: {}, input: names[0]!, mapIndex: 0, reduces: 1, outputDir: join(dir, 'w2'), cwd: dir });
  const failingReduce: MrApp = { ...wc, name: 'fr', reduce(key) { if (key === 'world') throw new Error('reduce broke'); return '1'; } };
  await assert.rejects(runReduceTask({ app: failingReduce, options: {}, reduceIndex: 0, inputs: files, outputDir: join(dir, 'o'), cwd: dir }), /reduce broke/);
  assert.deepEqual(await readdir(join(dir, 'o')), []);
});

test('two attempts of the same reduce task racing leave one whole output', async () => {
  const dir = await tempDir();
  const names = await writeInputs(dir, [['in', 'a b c a '.repeat(50_000)]]);
  const wc = getApp('wc')!;
  const { files } = await runMapTask({ app: wc, options: {}, input: names[0]!, mapIndex: 0, reduces: 1, outputDir: join(dir, 'w'), cwd: dir });
  const spec = { app: wc, options: {}, reduceIndex: 0, inputs: files, outputDir: join(dir, 'o'), cwd: dir };
  await Promise.all([runReduceTask(spec), runReduceTask(spec), runReduceTask(spec)]);
  assert.equal(await readFile(join(dir, 'o', 'mr-out-0'), 'utf8'), 'a 100000\nb 50000\nc 50000\n');
  assert.deepEqual(await readdir(join(dir, 'o')), ['mr-out-0']);
});

test('a missing input is a coded error naming the file; a bad partitioner is refused', async () => {
  const dir = await tempDir();
  const wc = getApp('wc')!;
  await assert.rejects(runMapTask({ app: wc, options: {}, input: 'nope.txt', mapIndex: 0, reduces: 2, outputDir: 'w', cwd: dir }), (err) => hasCode(err, 'MR_INPUT_NOT_FOUND') && /nope\.txt/.test(err.message));
  await assert.rejects(runSequential({ app: wc, inputs: ['nope.txt'], outputDir: 'o', cwd: dir }), (err) => hasCode(err, 'MR_INPUT_NOT_FOUND'));
  const names = await writeInputs(dir, [['in', 'x']]);
  const bad: MrApp = { ...wc, name: 'badpart', partition: () => 5 };
  await assert.rejects(runMapTask({ app: bad, options: {}, input: names[0]!, mapIndex: 0, reduces: 2, outputDir: 'w', cwd: dir }), (err) => hasCode(err, 'MR_BAD_PARTITION'));
});

test('a corrupt or missing intermediate file fails the reduce with MR_BAD_INTERMEDIATE and no output', async () => {
  const dir = await tempDir();
  const wc = getApp('wc')!;
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'good'), '["a","1"]\n["b","2"]\n');
  await writeFile(join(dir, 'torn'), '["a","1"]\n["b","2');
  await writeFile(join(dir, 'notpairs'), '["a","1"]\n{"k":"v"}\n');
  for (const bad of ['torn', 'notpairs', 'absent']) {
    await assert.rejects(runReduceTask({ app: wc, options: {}, reduceIndex: 0, inputs: ['good', bad], outputDir: 'o', cwd: dir }), (err) => hasCode(err, 'MR_BAD_INTERMEDIATE'), bad);
    assert.equal(existsSync(join(dir, 'o', 'mr-out-0')), false);
  }
  await runReduceTask({ app: wc, options: {}, reduceIndex: 0, inputs: ['good', 'good'], outputDir: 'o', cwd: dir });
  assert.equal(await readFile(join(dir, 'o', 'mr-out-0'), 'utf8'), 'a 2\nb 4\n');
});
