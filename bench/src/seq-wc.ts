/**
 * `mr seq --app wc` throughput: runSequential over a generated corpus
 * (Zipf-distributed vocabulary, mostly ASCII with some accented, Greek,
 * CJK and astral words, punctuation, digits, CRLF lines), beside a naive
 * implementation of the lab's mrsequential (split, one {key, value} object per
 * word, JS default sort, group, len) on the same files in the same run.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '@mr/sim';
import { getApp, runSequential } from '@mr/mapreduce-apps';
import { median, type Benchmark } from './benchmark.ts';
import { profileDir, profileInProcess, report } from './profile.ts';

const SYLLABLES = ['the', 'an', 'qu', 'is', 'er', 'on', 'st', 'ch', 'ou', 'ing', 'ae', 'ly', 'ré', 'ß', 'ña', 'λο', 'γο', '中', '文', 'ж', 'ка', '𝔘', 'ø'];

/** Deterministic corpus: `files` files of about `bytesPerFile` bytes. */
export function makeCorpus(seed: number, files: number, bytesPerFile: number): Buffer[] {
  const rng = createRng(seed);
  const vocab: string[] = [];
  for (let i = 0; i < 30_000; i++) {
    let w = '';
    const n = 1 + rng.int(4);
    for (let j = 0; j < n; j++) w += SYLLABLES[rng.int(SYLLABLES.length)]!;
    vocab.push(rng.chance(0.1) ? w[0]!.toUpperCase() + w.slice(1) : w);
  }
  const out: Buffer[] = [];
  for (let f = 0; f < files; f++) {
    const parts: string[] = [];
    let size = 0;
    let line = 0;
    while (size < bytesPerFile) {
      // Zipf-like: index = floor(N^u) - 1 for uniform u.
      const w = vocab[Math.floor(Math.pow(vocab.length, rng.next())) - 1]!;
      const sep = rng.chance(0.05) ? ', ' : rng.chance(0.02) ? "'s " : rng.chance(0.01) ? ` ${rng.int(2000)} ` : ' ';
      parts.push(w, sep);
      size += w.length + sep.length;
      line += w.length + sep.length;
      if (line > 70) {
        parts.push(rng.chance(0.3) ? '\r\n' : '\n');
        line = 0;
      }
    }
    out.push(Buffer.from(parts.join(''), 'utf8'));
  }
  return out;
}

/** The lab's mrsequential written the obvious way. */
async function naiveWc(inputs: string[], outFile: string): Promise<void> {
  const intermediate: { key: string; value: string }[] = [];
  for (const f of inputs) {
    const text = (await readFile(f)).toString('utf8');
    for (const w of text.split(/[^\p{L}]+/u)) if (w !== '') intermediate.push({ key: w, value: '1' });
  }
  intermediate.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  let out = '';
  let i = 0;
  while (i < intermediate.length) {
    let j = i + 1;
    while (j < intermediate.length && intermediate[j]!.key === intermediate[i]!.key) j++;
    const values: string[] = [];
    for (let k = i; k < j; k++) values.push(intermediate[k]!.value);
    out += `${intermediate[i]!.key} ${values.length}\n`;
    i = j;
  }
  await writeFile(outFile, out);
}

export const seqWc: Benchmark = {
  name: 'seq-wc',
  description: 'runSequential wc throughput (MB/s) vs a naive mrsequential, same corpus, same run',
  async run({ quick, log, cpuProf }) {
    const files = 8;
    const perFile = quick ? 256 * 1024 : 1024 * 1024;
    const reps = quick ? 3 : 5;
    const dir = await mkdtemp(join(tmpdir(), 'bench-seq-wc-'));
    try {
      const corpus = makeCorpus(42, files, perFile);
      const inputs: string[] = [];
      for (let i = 0; i < files; i++) {
        inputs.push(join(dir, `in-${i}.txt`));
        await writeFile(inputs[i]!, corpus[i]!);
      }
      const mb = corpus.reduce((n, b) => n + b.length, 0) / 1e6;
      log(`corpus: ${files} files, ${mb.toFixed(2)} MB`);
      const app = getApp('wc')!;
      const fast: number[] = [];
      const naive: number[] = [];
      // CPU time too: on a loaded machine wall time mostly measures the wait for a core.
      const fastCpu: number[] = [];
      const naiveCpu: number[] = [];
      const cpuMs = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1000;
      // Interleaved, so that machine load hits both alike.
      for (let r = 0; r < reps; r++) {
        let t = performance.now();
        let c = process.cpuUsage();
        await runSequential({ app, inputs, outputDir: join(dir, 'out') });
        fast.push(performance.now() - t);
        fastCpu.push(cpuMs(process.cpuUsage(c)));
        t = performance.now();
        c = process.cpuUsage();
        await naiveWc(inputs, join(dir, 'naive-out'));
        naive.push(performance.now() - t);
        naiveCpu.push(cpuMs(process.cpuUsage(c)));
      }
      const a = (await readFile(join(dir, 'out', 'mr-out-0'), 'utf8')).split('\n').sort();
      const b = (await readFile(join(dir, 'naive-out'), 'utf8')).split('\n').sort();
      if (a.join('\n') !== b.join('\n')) throw new Error('seq-wc: the two implementations disagree');
      const fastMs = median(fast);
      const naiveMs = median(naive);
      log(`runSequential wc: median ${fastMs.toFixed(1)} ms = ${(mb / (fastMs / 1000)).toFixed(1)} MB/s (first run ${fast[0]!.toFixed(1)} ms)`);
      log(`naive mrsequential: median ${naiveMs.toFixed(1)} ms = ${(mb / (naiveMs / 1000)).toFixed(1)} MB/s`);
      log(`speed-up: ${(naiveMs / fastMs).toFixed(2)}x (keys: ${a.length - 1})`);
      const fastCpuMs = median(fastCpu);
      const naiveCpuMs = median(naiveCpu);
      log(`CPU time: runSequential ${fastCpuMs.toFixed(1)} ms (${(mb / (fastCpuMs / 1000)).toFixed(1)} MB per CPU second), naive ${naiveCpuMs.toFixed(1)} ms: ${(naiveCpuMs / fastCpuMs).toFixed(2)}x`);
      if (cpuProf) {
        // A separate, profiled run: where runSequential's time goes per record (tokenizing, grouping, sorting, writing).
        const pdir = profileDir('seq-wc');
        const { file } = await profileInProcess(pdir, 'runSequential-wc', () => runSequential({ app, inputs, outputDir: join(dir, 'out') }));
        for (const l of report(file, 'runSequential wc')) log(l);
      }
      return { mb: Number(mb.toFixed(2)), fastMs: Number(fastMs.toFixed(1)), fastMBps: Number((mb / (fastMs / 1000)).toFixed(1)), naiveMs: Number(naiveMs.toFixed(1)), speedup: Number((naiveMs / fastMs).toFixed(2)), fastCpuMs: Number(fastCpuMs.toFixed(1)), naiveCpuMs: Number(naiveCpuMs.toFixed(1)), cpuSpeedup: Number((naiveCpuMs / fastCpuMs).toFixed(2)) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
