/**
 * The demo corpus of `mr local --demo`: a few text files of real-looking
 * prose, generated deterministically (seeded), so the demo needs no network
 * and no external data. Files that already exist with the right size are
 * kept.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const W = {
  name: ['the captain', 'the old doctor', 'Margaret', 'the stranger', 'my brother', 'the innkeeper', 'young Élise', 'the professor', 'the widow', 'our guide', 'the boy', 'the mayor'],
  place: ['the harbour', 'the village', 'the library', 'the moor', 'the river', 'the garden', 'the station', 'the old mill', 'the church', 'the market', 'the forest', 'the café'],
  verb: ['walked to', 'looked at', 'spoke of', 'remembered', 'returned to', 'hurried past', 'thought of', 'wrote about', 'waited near', 'dreamed of', 'left', 'found'],
  adj: ['quiet', 'grey', 'ancient', 'bright', 'cold', 'narrow', 'silent', 'long', 'dark', 'gentle', 'strange', 'green'],
  noun: ['letter', 'lamp', 'door', 'window', 'road', 'storm', 'morning', 'evening', 'house', 'ship', 'book', 'bell', 'fire', 'key', 'portrait', 'garden'],
  adverb: ['slowly', 'at last', 'once more', 'without a word', 'in silence', 'with some surprise', 'before dawn', 'all the same'],
  said: ['said', 'whispered', 'answered', 'cried', 'replied', 'murmured'],
  line: [
    'I do not know what you mean',
    'we must go before the tide turns',
    'there is nothing more to be done',
    'it was not the first time',
    'you will see it for yourself',
    'nobody has lived there for years',
    'the bell rang twice in the night',
    'I had almost forgotten the letter',
  ],
};

function sentence(r: () => number): string {
  const p = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);
  switch (Math.floor(r() * 5)) {
    case 0:
      return `${cap(p(W.name))} ${p(W.verb)} ${p(W.place)} ${p(W.adverb)}.`;
    case 1:
      return `The ${p(W.adj)} ${p(W.noun)} of ${p(W.place)} was ${p(W.adj)}, and ${p(W.name)} ${p(W.verb)} it.`;
    case 2:
      return `"${cap(p(W.line))}," ${p(W.said)} ${p(W.name)}.`;
    case 3:
      return `It was a ${p(W.adj)} ${p(W.noun)}; ${p(W.name)} ${p(W.verb)} ${p(W.place)} and ${p(W.verb)} the ${p(W.noun)}.`;
    default:
      return `In ${p(W.place)} there was a ${p(W.adj)} ${p(W.noun)}, ${p(W.adj)} and ${p(W.adj)}, which ${p(W.name)} ${p(W.verb)} ${p(W.adverb)}.`;
  }
}

export function demoText(seed: number, bytes: number, title: string): string {
  const r = rng(seed);
  const out: string[] = [`${title.toUpperCase()}\n\n`];
  let size = out[0]!.length;
  let chapter = 0;
  while (size < bytes) {
    const para: string[] = [];
    if (r() < 0.04) para.push(`CHAPTER ${++chapter}\n\n`);
    const n = 3 + Math.floor(r() * 6);
    const sentences = Array.from({ length: n }, () => sentence(r)).join(' ');
    para.push(sentences.replace(/(.{1,72})(\s|$)/g, '$1\n'), '\n');
    const s = para.join('');
    out.push(s);
    size += Buffer.byteLength(s);
  }
  return out.join('');
}

const BOOKS = ['the-harbour-letters', 'a-winter-on-the-moor', 'the-old-mill', 'the-professors-garden', 'voyage-of-the-grey-ship', 'the-silent-bell'];

/** Writes the demo books into dir (about 1.5 MB in all); returns their absolute paths. */
export function writeDemoCorpus(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return BOOKS.map((name, i) => {
    const path = join(dir, `${name}.txt`);
    const text = demoText(1000 + i, 180_000 + i * 25_000, name.replace(/-/g, ' '));
    if (!existsSync(path) || statSync(path).size !== Buffer.byteLength(text)) writeFileSync(path, text);
    return path;
  });
}
