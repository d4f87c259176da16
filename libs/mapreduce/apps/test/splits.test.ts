import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { hasCode } from '@mr/errors';
import { closeInput, getApp, lineChunks, openInput, openInputSync, planSplits, runMapTask, runSequential, Grouper } from '../src/index.ts';
import { cSortedLines, distributedOutput, seqOutput, tempDir, writeInputs } from './helpers.ts';

/** Splits the text into lines the way a reader of the whole file does (a last line without \n included). */
function allLines(text: Buffer): string[] {
  const out: string[] = [];
  let s = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === 10) {
      out.push(text.toString('latin1', s, i + 1));
      s = i + 1;
    }
  }
  if (s < text.length) out.push(text.toString('latin1', s));
  return out;
}

test('line-aligned splits: every line is read by exactly one split, whatever the split size and chunk size, with either reader', async () => {
  const dir = await tempDir();
  const text = fc.array(fc.constantFrom('a', 'b', ' ', '\n', '\n\n', 'é'), { maxLength: 200 }).map((a) => Buffer.from(a.join('')));
  await fc.assert(fc.asyncProperty(text, fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 16 }), fc.constantFrom('async', 'blocking', 'grown'), async (buf, splitBytes, chunkBytes, reader) => {
    const path = join(dir, 'f');
    // 'grown': the file was shorter when opened (reads sized to the old size must still reach the end).
    await writeFile(path, reader === 'grown' ? buf.subarray(0, buf.length >> 1) : buf);
    const fh = reader === 'async' ? await openInput({ path }, dir) : openInputSync({ path }, dir);
    if (reader === 'grown') await writeFile(path, buf);
    try {
      const got: string[] = [];
      for (const [split] of planSplits({ input: 'lines' }, [buf.length], splitBytes)) {
        for await (const c of lineChunks(fh, split!.start, split!.end, chunkBytes)) {
          assert.ok(c.buf.length === 0 || c.offset === 0 || buf[c.offset - 1] === 10, 'a chunk starts at a line start');
          got.push(...allLines(c.buf));
        }
      }
      assert.deepEqual(got, allLines(buf));
    } finally {
      if ('read' in fh) await fh.close();
      else closeInput(fh);
    }
  }), { numRuns: 300 });
});

test('planSplits: big files divided, small files combined up to the split size, whole-file apps one file per task', () => {
  assert.deepEqual(planSplits({ input: 'lines' }, [25, 3, 4, 9, 0], 10), [
    [{ input: 0, start: 0, end: 10 }], [{ input: 0, start: 10, end: 20 }], [{ input: 0, start: 20 }],
    [{ input: 1, start: 0 }, { input: 2, start: 0 }],
    [{ input: 3, start: 0 }, { input: 4, start: 0 }],
  ]);
  // grep numbers lines: a big file stays one split; small ones are still combined.
  assert.deepEqual(planSplits({ input: 'lines', splittable: false }, [25, 3, 4], 10), [[{ input: 0, start: 0 }], [{ input: 1, start: 0 }, { input: 2, start: 0 }]]);
  assert.deepEqual(planSplits({}, [25, 3], 10), [[{ input: 0, start: 0 }], [{ input: 1, start: 0 }]]);
  assert.throws(() => planSplits({ input: 'lines' }, [1], 0), RangeError);
  // Each file counts as at least 1/64 of the split size (an open cost): 200 tiny files make 4 splits, not 1.
  const tiny = planSplits({ input: 'lines' }, Array.from({ length: 200 }, () => 20), 64 << 20);
  assert.deepEqual(tiny.map((s) => s.length), [64, 64, 64, 8]);
  assert.deepEqual(tiny.flat().map((p) => p.input), Array.from({ length: 200 }, (_, i) => i));
});

test('every built-in deterministic app over tiny splits and a tiny memory budget (spills) gives exactly the sequential lines', async () => {
  const apps: [string, Record<string, string>][] = [['wc', {}], ['indexer', {}], ['sort', {}], ['nocrash', {}], ['grep', { pattern: '[aé]b|^$|\\d' }]];
  const text = fc.array(fc.constantFrom('a', 'b', 'é', '中', ' ', '\n', '\r\n', '1', 'ab ab'), { maxLength: 150 }).map((a) => Buffer.from(a.join('')));
  await fc.assert(fc.asyncProperty(fc.constantFrom(...apps), fc.array(text, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom(1, 200, 1 << 20), async ([name, options], files, reduces, splitBytes, memoryBytes) => {
    const app = getApp(name)!;
    const dir = await tempDir();
    // The same file twice: indexer lists it twice, as the lab's does.
    const names = await writeInputs(dir, files.map((b, i) => [`f${i}.txt`, b] as [string, Buffer]));
    const inputs = [...names, names[0]!];
    assert.deepEqual(cSortedLines(await distributedOutput(app, dir, inputs, reduces, options, splitBytes, memoryBytes)), cSortedLines(await seqOutput(app, dir, inputs, options)));
  }), { numRuns: 80 });
});

test('the reduce side spills sorted runs past its memory budget and merges them to the same output, leaving no spill files', async () => {
  const dir = await tempDir();
  const spill = await tempDir('mr-spill-parent-');
  const letters = (n: number): string => String.fromCharCode(97 + (n % 26), 97 + (Math.floor(n / 26) % 26), 97 + Math.floor(n / 676));
  const words = Array.from({ length: 3000 }, (_, i) => `w${letters((i * 7919) % 1000)}`).join(' ');
  const names = await writeInputs(dir, [['a.txt', `${words}\n`.repeat(5)], ['b.txt', `${words}\n`]]);
  const app = getApp('wc')!;
  const g = new Grouper(10_000, spill);
  for (let i = 0; i < 5000; i++) g.add(`k${i % 700}`, String(i));
  await g.maybeSpill();
  for (let i = 5000; i < 9000; i++) {
    g.add(`k${i % 700}`, String(i));
    await g.maybeSpill();
  }
  assert.ok(g.spills > 3, `spilled ${g.spills} runs`);
  let keys = 0;
  for await (const [k, values] of g.groups()) {
    keys++;
    const n = Number(k.slice(1));
    // Values arrive in the order they were added, across runs.
    assert.deepEqual(values.map(Number), Array.from({ length: 9000 }, (_, i) => i).filter((i) => i % 700 === n));
  }
  assert.equal(keys, 700);
  await g.close();
  assert.deepEqual(await readdir(spill), []);
  const seq = await runSequential({ app, inputs: names, outputDir: join(dir, 'seq-small'), cwd: dir, memoryBytes: 2000, spillDir: spill });
  assert.deepEqual(cSortedLines(await distributedOutput(app, dir, names, 3, {}, 5000, 2000)), cSortedLines(await seqOutput(app, dir, names)));
  assert.equal(seq.counters['outputRecords'], 1000);
  assert.deepEqual(await readdir(spill), []);
});

test('grep: a catastrophic-backtracking pattern over a long line finishes (linear-time engine)', async () => {
  const grep = getApp('grep')!;
  const dir = await tempDir();
  const names = await writeInputs(dir, [['a.txt', `${'a'.repeat(50_000)}b\naaa\n`]]);
  const t0 = performance.now();
  const out = (await seqOutput(grep, dir, names, { pattern: '^(a+)+$' })).toString();
  assert.equal(out, 'a.txt:2 aaa\n');
  // A backtracking engine takes ~2^n steps here (it never finishes); RE2 is linear.
  assert.ok(performance.now() - t0 < 10_000, `took ${performance.now() - t0} ms`);
});

test('grep: line numbers count from the file start across chunks of a big file', async () => {
  const grep = getApp('grep')!;
  const dir = await tempDir();
  const lines = Array.from({ length: 300_000 }, (_, i) => (i % 50_000 === 7 ? `needle ${i}` : `hay ${i}`));
  const names = await writeInputs(dir, [['big.txt', `${lines.join('\n')}\n`]]);
  const want = [7, 50_007, 100_007, 150_007, 200_007, 250_007].map((i) => `big.txt:${i + 1} needle ${i}`);
  assert.deepEqual(cSortedLines(await distributedOutput(grep, dir, names, 2, { pattern: 'needle' }, 1 << 20)), cSortedLines(Buffer.from(want.join('\n'))));
});

test('an input whose symlink was re-pointed after the job was accepted is refused at open (MR_INPUT_ESCAPED, not retryable)', async () => {
  const dir = await tempDir();
  const root = join(dir, 'root');
  const outside = join(dir, 'secret');
  await writeInputs(dir, [['secret', 'api_key hunter2\n'], ['real.txt', 'hello\n']]);
  await import('node:fs/promises').then((fs) => fs.mkdir(root));
  await writeFile(join(root, 'data.txt'), 'hello world\n');
  const accepted = join(root, 'data.txt');
  // After acceptance the file is replaced by a symlink to a file outside the root.
  await rename(accepted, join(root, 'old.txt'));
  await symlink(outside, accepted);
  const wc = getApp('wc')!;
  await assert.rejects(
    runMapTask({ app: wc, options: {}, pieces: [{ path: accepted, name: 'data.txt', verifyRealPath: true }], mapIndex: 0, reduces: 1, outputDir: join(dir, 'w') }),
    (err: Error & { retryable?: boolean }) => hasCode(err, 'MR_INPUT_ESCAPED') && err.retryable === false && !err.message.includes('secret'),
  );
  // A directory on the path swapped for a symlink is caught the same way.
  await import('node:fs/promises').then(async (fs) => {
    await fs.mkdir(join(dir, 'elsewhere'));
    await fs.writeFile(join(dir, 'elsewhere', 'x.txt'), 'x\n');
    await fs.mkdir(join(root, 'sub'));
    await fs.writeFile(join(root, 'sub', 'x.txt'), 'y\n');
    await fs.rename(join(root, 'sub'), join(root, 'sub-old'));
    await fs.symlink(join(dir, 'elsewhere'), join(root, 'sub'));
  });
  await assert.rejects(
    runMapTask({ app: wc, options: {}, pieces: [{ path: join(root, 'sub', 'x.txt'), verifyRealPath: true }], mapIndex: 0, reduces: 1, outputDir: join(dir, 'w') }),
    (err) => hasCode(err, 'MR_INPUT_ESCAPED'),
  );
  // Unchanged, it reads fine.
  const ok = await runMapTask({ app: wc, options: {}, pieces: [{ path: join(root, 'old.txt'), verifyRealPath: true }], mapIndex: 0, reduces: 1, outputDir: join(dir, 'w') });
  assert.equal(ok.counters['mapInputBytes'], 12);
});
