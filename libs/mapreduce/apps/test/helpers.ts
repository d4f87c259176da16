import { mkdtemp, rm, writeFile, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { stat } from 'node:fs/promises';
import { planSplits, runMapTask, runReduceTask, runSequential, type MrApp } from '../src/index.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test file ends. */
export async function tempDir(prefix = 'mr-apps-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Writes the given files (name -> contents) into dir; returns their names in order. */
export async function writeInputs(dir: string, files: [string, string | Buffer][]): Promise<string[]> {
  for (const [name, data] of files) await writeFile(join(dir, name), data);
  return files.map(([name]) => name);
}

/** Lines of a file as `LC_ALL=C sort | grep .` would give them (byte order, no empty lines). */
export function cSortedLines(text: Buffer): string[] {
  const lines: Buffer[] = [];
  let s = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i === text.length || text[i] === 10) {
      if (i > s) lines.push(text.subarray(s, i));
      s = i + 1;
    }
  }
  return lines.sort(Buffer.compare).map((b) => b.toString('latin1'));
}

/** Runs the sequential runner in `cwd` and returns mr-out-0's raw bytes. */
export async function seqOutput(app: MrApp, cwd: string, inputs: string[], options: Record<string, string> = {}): Promise<Buffer> {
  const out = await tempDir('mr-seq-out-');
  const { file } = await runSequential({ app, options, inputs, outputDir: out, cwd });
  return readFile(file);
}

/**
 * Runs the job distributed-style (every map task over the splits planned for
 * `splitBytes`, then every reduce task, with a memory budget of `memoryBytes`);
 * returns all mr-out-* bytes concatenated in partition order.
 */
export async function distributedOutput(app: MrApp, cwd: string, inputs: string[], reduces: number, options: Record<string, string> = {}, splitBytes?: number, memoryBytes?: number): Promise<Buffer> {
  const work = await tempDir('mr-work-');
  const out = await tempDir('mr-dist-out-');
  const sizes = await Promise.all(inputs.map(async (p) => (await stat(join(cwd, p))).size));
  const splits = planSplits(app, sizes, splitBytes);
  const maps = [];
  for (let m = 0; m < splits.length; m++) {
    const pieces = splits[m]!.map((p) => ({ path: inputs[p.input]!, index: p.input, start: p.start, end: p.end }));
    maps.push(await runMapTask({ app, options, pieces, mapIndex: m, reduces, outputDir: work, cwd, memoryBytes }));
  }
  const parts: Buffer[] = [];
  for (let r = 0; r < reduces; r++) {
    const { file } = await runReduceTask({ app, options, reduceIndex: r, inputs: maps.map((m) => m.files[r]!), outputDir: out, cwd, memoryBytes });
    parts.push(await readFile(file));
  }
  const names = await readdir(out);
  if (names.length !== reduces) throw new Error(`expected ${reduces} output files, found ${names.join(', ')}`);
  return Buffer.concat(parts);
}
