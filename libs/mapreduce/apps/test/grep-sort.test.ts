import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasCode } from '@mr/errors';
import { getApp, runMapTask, runReduceTask, runSequential } from '../src/index.ts';
import { seqOutput, tempDir, writeInputs } from './helpers.ts';

const grep = getApp('grep')!;
const sort = getApp('sort')!;

test('grep: options are validated with a message saying what is wrong', async () => {
  assert.match(grep.validateOptions!({})!, /pattern/);
  assert.match(grep.validateOptions!({ pattern: '(' })!, /invalid or unsupported pattern/);
  // Backreferences and lookaround are not RE2: refused at submit, naming the problem.
  assert.match(grep.validateOptions!({ pattern: '(a)\\1' })!, /unsupported pattern.*invalid escape/);
  assert.match(grep.validateOptions!({ pattern: '(?<=a)b' })!, /unsupported pattern/);
  assert.match(grep.validateOptions!({ pattern: 'a', flags: 'g' })!, /flags/);
  assert.match(grep.validateOptions!({ pattern: 'a', colour: 'red' })!, /unknown option "colour"/);
  assert.equal(grep.validateOptions!({ pattern: 'whale', flags: 'i' }), undefined);
  const dir = await tempDir();
  await assert.rejects(runSequential({ app: grep, options: { pattern: '[' }, inputs: [], outputDir: 'o', cwd: dir }), (err) => hasCode(err, 'MR_BAD_OPTIONS'));
});

test('grep: `file:lineno line` for each matching line, CRLF stripped, keys sorted', async () => {
  const dir = await tempDir();
  const names = await writeInputs(dir, [
    ['moby.txt', 'Call me Ishmael.\r\nThe WHALE!\r\nno\r\nwhale again'],
    ['b.txt', 'a whale\n\nwhales\n'],
  ]);
  const out = (await seqOutput(grep, dir, names, { pattern: 'whale', flags: 'i' })).toString('utf8');
  assert.equal(out, ['b.txt:1 a whale', 'b.txt:3 whales', 'moby.txt:2 The WHALE!', 'moby.txt:4 whale again', ''].join('\n'));
  const noflag = (await seqOutput(grep, dir, names, { pattern: '^whale' })).toString('utf8');
  assert.equal(noflag, 'b.txt:3 whales\nmoby.txt:4 whale again\n');
});

test('grep: finds a match at the end of a line of several MB', async () => {
  const dir = await tempDir();
  const names = await writeInputs(dir, [['huge.txt', 'x'.repeat(5_000_000) + 'NEEDLE\nshort NEEDLE\n']]);
  const out = (await seqOutput(grep, dir, names, { pattern: 'NEEDLE$' })).toString('utf8').split('\n');
  assert.equal(out.length, 3);
  assert.equal(out[0]!.length, 'huge.txt:1 '.length + 5_000_006);
  assert.equal(out[1], 'huge.txt:2 short NEEDLE');
});

test('sort: `line count` in byte order, duplicates counted, empty lines skipped', async () => {
  const dir = await tempDir();
  const names = await writeInputs(dir, [['a', 'pear\r\napple\n\nZebra\n😀\n\uffee\n'], ['b', 'apple\nbanana']]);
  const out = (await seqOutput(sort, dir, names)).toString('utf8');
  assert.equal(out, 'Zebra 1\napple 2\nbanana 1\npear 1\n\uffee 1\n😀 1\n');
});

test('sort: its range partitioner makes mr-out-0, mr-out-1, ... concatenated globally sorted', async () => {
  const dir = await tempDir();
  const lines = Array.from({ length: 2000 }, (_, i) => `${String.fromCharCode(33 + ((i * 7919) % 90))}${i}é中😀`.slice(0, 1 + (i % 6)));
  const names = await writeInputs(dir, [['x', lines.slice(0, 1000).join('\n')], ['y', lines.slice(1000).join('\n')]]);
  const reduces = 5;
  const maps = await Promise.all(names.map((input, m) => runMapTask({ app: sort, options: {}, input, mapIndex: m, reduces, outputDir: join(dir, 'w'), cwd: dir })));
  const parts: string[] = [];
  for (let r = 0; r < reduces; r++) {
    const { file } = await runReduceTask({ app: sort, options: {}, reduceIndex: r, inputs: maps.map((m) => m.files[r]!), outputDir: join(dir, 'o'), cwd: dir });
    parts.push(await readFile(file, 'utf8'));
  }
  assert.ok(parts.filter((p) => p.length > 0).length >= 3, 'several partitions are used');
  const all = parts.join('');
  assert.equal(all, (await seqOutput(sort, dir, names)).toString('utf8'));
});
