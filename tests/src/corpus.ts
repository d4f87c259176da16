/**
 * The test corpus: 8 files named like the lab's pg-*.txt, a few hundred KB
 * of varied, deterministic text (seeded), with non-ASCII letters (accents,
 * Greek, Cyrillic, CJK), digits and punctuation as separators, CRLF lines,
 * apostrophes and hyphens, so word splitting on "not a Unicode letter" is
 * exercised.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng } from '@mr/sim';

export const LAB_NAMES = [
  'pg-being_ernest.txt',
  'pg-dorian_gray.txt',
  'pg-frankenstein.txt',
  'pg-grimm.txt',
  'pg-huckleberry_finn.txt',
  'pg-metamorphosis.txt',
  'pg-sherlock_holmes.txt',
  'pg-tom_sawyer.txt',
];

/** Uniform floats in [0, 1) from the project's seeded generator (@mr/sim). */
function rng(seed: number): () => number {
  const g = createRng(seed);
  return () => g.next();
}

const COMMON = (
  'the of and to a in that it was he his i with as had for you not be her on at by which have ' +
  'or from this him but all she they were my are me one their so an said them we who would been ' +
  'will no when there if more out up into do any your what has man could other than our some very ' +
  'time upon about may its only now like little then can should made did us such great before must'
).split(' ');
const RARE = (
  'Victor Elizabeth Holmes Watson Gregor Samsa Huckleberry Tom Sawyer Dorian Gray Ernest Gwendolen ' +
  'creature laboratory violin telegram raft river island lantern mystery portrait garden kingdom ' +
  'café naïve façade résumé jalapeño Zürich Ångström smörgåsbord crème brûlée déjà ' +
  'αλήθεια λόγος θάλασσα Москва книга слово 東京 物語 ﬁnish Straße'
).split(' ');
const PUNCT = [',', ',', ';', ':', ' -', '—', "'s", '!', '?', '"', '(1)', '42', '3.14'];

const SYLLABLES = (
  'ka lo mi ne ru sa ti vo be da fe gu ho ji ma no pe qu ri so tu va we xi ya ze ' +
  'an el in or us ar en ir ol um ste pra gle tho wri ch sh th ' +
  'é è ê à ö ü ä ø å ñ ç ß ł ž ый ка ло ми λα μι σο 山 川 ا ب'
).split(' ');

/** A seeded lexicon of made-up words (some with non-ASCII letters), a few thousand distinct. */
function lexicon(seed: number, n: number): string[] {
  const r = rng(seed);
  const words = new Set<string>();
  while (words.size < n) {
    const k = 1 + Math.floor(r() * 4);
    let w = '';
    for (let i = 0; i < k; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)];
    if (r() < 0.1) w = w[0]!.toUpperCase() + w.slice(1);
    words.add(w);
  }
  return [...words];
}

const LEXICON = lexicon(1, 6000);

export function generateText(seed: number, bytes: number): string {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  // Skewed towards the start of the lexicon, like word frequencies in real text.
  const lex = () => LEXICON[Math.floor(r() * r() * r() * LEXICON.length)]!;
  const parts: string[] = [];
  let size = 0;
  let line = 0;
  while (size < bytes) {
    const n = 5 + Math.floor(r() * 14);
    const words: string[] = [];
    for (let i = 0; i < n; i++) {
      const x = r();
      let w = x < 0.08 ? pick(RARE) : x < 0.45 ? lex() : pick(COMMON);
      if (i === 0) w = w[0]!.toUpperCase() + w.slice(1);
      if (r() < 0.08) w += pick(PUNCT);
      words.push(w);
    }
    // A few seeded one-off words, so every file has keys the others lack.
    if (r() < 0.05) words.push(`xq${Math.floor(r() * 100000).toString(36)}`);
    const sentence = words.join(' ') + (r() < 0.8 ? '.' : '!');
    line++;
    const eol = line % 7 === 0 ? '\r\n' : line % 3 === 0 ? '\n\n' : ' ';
    parts.push(sentence + eol);
    size += Buffer.byteLength(sentence) + eol.length;
  }
  return parts.join('');
}

/** Writes the 8 files into dir (sizes 15-75 KB, together ~350 KB); returns their absolute paths. */
export function writeCorpus(dir: string, seed = 6824): string[] {
  mkdirSync(dir, { recursive: true });
  return LAB_NAMES.map((name, i) => {
    const path = join(dir, name);
    writeFileSync(path, generateText(seed + i * 7919, 15_000 + ((i * 37_000) % 60_000)));
    return path;
  });
}
