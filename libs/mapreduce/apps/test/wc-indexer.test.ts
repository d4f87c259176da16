import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { getApp, countWords, decodeSegments, type MrApp } from '../src/index.ts';
import { cSortedLines, distributedOutput, seqOutput, tempDir, writeInputs } from './helpers.ts';

const wc = getApp('wc')!;
const indexer = getApp('indexer')!;

/** The lab's wc.go literally: emit ("w", "1") per word, reduce = len(values). */
const labWc: MrApp = {
  name: 'lab-wc',
  description: 'reference',
  map(_f, contents, emit) {
    for (const w of contents.toString('utf8').match(/\p{L}+/gu) ?? []) emit(w, '1');
  },
  reduce(_k, values) {
    return String(values.length);
  },
};

function lines(out: Buffer): string[] {
  return out.toString('utf8').split('\n').filter((l) => l !== '');
}

test('wc: words are maximal runs of Unicode letters in any script; everything else separates', async () => {
  const dir = await tempDir();
  const text = [
    "Don't stop: it's 2024-01-01, naïve café Ελληνικά русский 中文字 العربية हिन्दी",
    'CRLF\r\nline\r\nword_with_underscore digits123between x1y',
    'astral: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐐷𐐷 emoji😀split ǅungla ʰmodifier',
    'case Case CASE case',
  ].join('\n');
  const bad = Buffer.concat([Buffer.from('ab'), Buffer.from([0xff]), Buffer.from('cd'), Buffer.from([0xe2, 0x82]), Buffer.from('ef'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('gh\n')]);
  const names = await writeInputs(dir, [['one.txt', text], ['bad.bin', bad], ['empty.txt', '']]);
  const out = lines(await seqOutput(wc, dir, names));
  const counts = Object.fromEntries(out.map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
  assert.equal(counts['Don'], 1);
  assert.equal(counts['t'], 1);
  assert.equal(counts['it'], 1);
  assert.equal(counts['s'], 1);
  assert.equal(counts['naïve'], 1);
  assert.equal(counts['café'], 1);
  assert.equal(counts['Ελληνικά'], 1);
  assert.equal(counts['中文字'], 1);
  assert.equal(counts['CRLF'], 1, 'CR and LF are separators');
  assert.equal(counts['word'], 1);
  assert.equal(counts['with'], 1);
  assert.equal(counts['digits'], 1);
  assert.equal(counts['between'], 1);
  assert.equal(counts['x'], 1);
  assert.equal(counts['y'], 1);
  assert.equal(counts['𝔘𝔫𝔦𝔠𝔬𝔡𝔢'], 1, 'astral letters are letters');
  assert.equal(counts['𐐷𐐷'], 1);
  assert.equal(counts['emoji'], 1);
  assert.equal(counts['split'], 1);
  assert.equal(counts['ǅungla'], 1, 'titlecase letter (Lt)');
  assert.equal(counts['ʰmodifier'], 1, 'modifier letter (Lm)');
  assert.equal(counts['case'], 2, 'no case folding');
  assert.equal(counts['Case'], 1);
  assert.equal(counts['CASE'], 1);
  for (const w of ['ab', 'cd', 'ef', 'gh']) assert.equal(counts[w], 1, `invalid UTF-8 separates ${w}`);
  assert.ok(!Object.keys(counts).some((k) => /[^\p{L}]/u.test(k)), 'every key is letters only');
  // Output keys are in byte order in the one output file.
  const keys = out.map((l) => Buffer.from(l.slice(0, l.lastIndexOf(' '))));
  for (let i = 1; i < keys.length; i++) assert.ok(Buffer.compare(keys[i - 1]!, keys[i]!) < 0);
});

test('wc: a single line of several MB and an empty file', async () => {
  const dir = await tempDir();
  const huge = 'lorem ipsum-dolor '.repeat(400_000); // 7.2 MB, no newline
  const names = await writeInputs(dir, [['huge.txt', huge], ['empty.txt', '']]);
  assert.deepEqual(lines(await seqOutput(wc, dir, names)), ['dolor 400000', 'ipsum 400000', 'lorem 400000']);
  assert.deepEqual(lines(await distributedOutput(wc, dir, names, 3)).sort(), ['dolor 400000', 'ipsum 400000', 'lorem 400000']);
  assert.equal((await seqOutput(wc, dir, ['empty.txt'])).length, 0);
});

const alphabet = ['a', 'b', 'Z', 'é', 'ß', 'Ж', '中', 'ǅ', '𝔘', '😀', ' ', '\n', '\r\n', '\t', "'", '-', '1', '_', '\u00a0', '\ufffd'];
const textArb = fc.array(fc.constantFrom(...alphabet), { maxLength: 200 }).map((a) => a.join(''));
const bytesArb = fc.oneof(
  textArb.map((t) => Buffer.from(t)),
  fc.array(fc.oneof(textArb.map((t) => Buffer.from(t)), fc.uint8Array({ maxLength: 6 }).map((u) => Buffer.from(u))), { maxLength: 6 }).map((b) => Buffer.concat(b)),
);

test('countWords agrees with the plain /\\p{L}+/gu split on random text and bytes', () => {
  fc.assert(fc.property(bytesArb, (buf) => {
    const text = buf.toString('utf8');
    const expected = new Map<string, number>();
    for (const w of text.match(/\p{L}+/gu) ?? []) expected.set(w, (expected.get(w) ?? 0) + 1);
    assert.deepEqual(countWords(text), expected);
  }), { numRuns: 1000 });
  // Any code points at all (every script, astral planes, lone surrogates).
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => {
    const expected = new Map<string, number>();
    for (const w of text.match(/\p{L}+/gu) ?? []) expected.set(w, (expected.get(w) ?? 0) + 1);
    assert.deepEqual(countWords(text), expected);
  }), { numRuns: 3000 });
});

test('text decoded in pieces (as for huge inputs) counts the same words as decoded whole', () => {
  fc.assert(fc.property(bytesArb, fc.integer({ min: 1, max: 16 }), (buf, size) => {
    const pieces = [...decodeSegments(buf, size)];
    assert.equal(pieces.join(''), buf.toString('utf8'), 'no UTF-8 sequence is cut');
    assert.deepEqual(countWords(pieces), countWords(buf.toString('utf8')));
  }), { numRuns: 2000 });
  const long = Buffer.from('abcdefghij'.repeat(10) + ' xyz');
  assert.deepEqual([...decodeSegments(long, 7)], ['abcdefghij'.repeat(10) + ' ', 'xyz'], 'a word longer than a piece is not cut');
});

test('wc with combiner and summing reduce gives exactly the lab wc output, sequential and distributed', async () => {
  await fc.assert(fc.asyncProperty(fc.array(bytesArb, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 7 }), async (files, reduces) => {
    const dir = await tempDir();
    const names = await writeInputs(dir, files.map((b, i) => [`in-${i}.txt`, b] as [string, Buffer]));
    const reference = cSortedLines(await seqOutput(labWc, dir, names));
    assert.deepEqual(cSortedLines(await seqOutput(wc, dir, names)), reference);
    assert.deepEqual(cSortedLines(await distributedOutput(wc, dir, names, reduces)), reference);
  }), { numRuns: 40 });
});

test('indexer: `word n doc1,doc2` with documents sorted and counted once each', async () => {
  const dir = await tempDir();
  const names = await writeInputs(dir, [['b.txt', 'apple apple Banana\r\n'], ['a.txt', 'apple cherry']]);
  // Names reach map exactly as given: the same file under two names is two documents.
  const base = dir.split('/').pop()!;
  const out = lines(await seqOutput(indexer, dir, [...names, `../${base}/a.txt`]));
  assert.deepEqual(out, [
    'Banana 1 b.txt',
    `apple 3 ../${base}/a.txt,a.txt,b.txt`,
    `cherry 2 ../${base}/a.txt,a.txt`,
  ]);
});

test('indexer: distributed output equals sequential output', async () => {
  await fc.assert(fc.asyncProperty(fc.array(bytesArb, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 5 }), async (files, reduces) => {
    const dir = await tempDir();
    const names = await writeInputs(dir, files.map((b, i) => [`doc-${i}.txt`, b] as [string, Buffer]));
    assert.deepEqual(cSortedLines(await distributedOutput(indexer, dir, names, reduces)), cSortedLines(await seqOutput(indexer, dir, names)));
  }), { numRuns: 25 });
});
