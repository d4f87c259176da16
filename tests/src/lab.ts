/**
 * One run of a lab test: a fresh temp dir with the corpus (root/pg-*.txt),
 * the processes' cwd root/mr-tmp (inputs passed as ../pg-*.txt, like the
 * lab), the coordinator's state in root/data, and every child killed and
 * the dir removed when the test ends.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeCorpus } from './corpus.ts';
import { Proc, runMr, sleep } from './procs.ts';

export const LIMIT_MS = 45_000;
export const CRASH_LIMIT_MS = 120_000;

interface TestLike {
  after(fn: () => void | Promise<void>): void;
}

export class Lab {
  readonly root: string;
  readonly cwd: string;
  readonly data: string;
  readonly corpus: string[];
  /** The inputs as the lab passes them: relative to cwd. */
  readonly inputs: string[];
  readonly env: NodeJS.ProcessEnv;
  readonly procs: Proc[] = [];
  #workers = 0;

  constructor(t: TestLike, opts: { keep?: boolean } = {}) {
    this.root = mkdtempSync(join(tmpdir(), 'mr-lab-'));
    this.cwd = join(this.root, 'mr-tmp');
    this.data = join(this.root, 'data');
    mkdirSync(this.cwd);
    this.corpus = writeCorpus(this.root);
    this.inputs = this.corpus.map((p) => `../${basename(p)}`);
    const env: NodeJS.ProcessEnv = { ...process.env, MR_TOKEN: randomBytes(12).toString('hex'), MR_WORKER_TOKEN: randomBytes(12).toString('hex'), FORCE_COLOR: '0' };
    delete env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    delete env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];
    delete env['NODE_TEST_CONTEXT'];
    this.env = env;
    t.after(async () => {
      for (const p of this.procs) p.kill();
      await Promise.all(this.procs.map((p) => p.exited));
      if (!opts.keep && !process.env['MR_KEEP_TMP']) rmSync(this.root, { recursive: true, force: true });
    });
  }

  spawn(name: string, args: string[], limitMs = LIMIT_MS): Proc {
    const p = new Proc(name, args, { cwd: this.cwd, env: this.env, limitMs });
    this.procs.push(p);
    return p;
  }

  /** Starts `mr coordinator --port 0 --exit-when-done` and waits for its URL. */
  async coordinator(limitMs = LIMIT_MS, extra: string[] = []): Promise<{ proc: Proc; url: string }> {
    const proc = this.spawn(
      'coordinator',
      ['coordinator', '--port', '0', '--data', this.data, '--input-root', this.root, '--exit-when-done', ...extra],
      limitMs,
    );
    const m = await proc.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/);
    return { proc, url: m[1]! };
  }

  /**
   * `mr worker` as the lab runs it: the lab's workers exit once the coordinator
   * is gone (it exits when the job is done), so they wait 5 s for it, not the
   * product's default of minutes (meant to outlast a coordinator restart).
   */
  worker(url: string, limitMs = LIMIT_MS, extra: string[] = []): Proc {
    return this.spawn(`worker ${++this.#workers}`, ['worker', '--coordinator', url, '--coordinator-wait', '5s', ...extra], limitMs);
  }

  /** `mr submit` the corpus (as ../pg-*.txt) with output in cwd, like the lab; returns the job id. */
  async submit(url: string, app: string, extra: string[] = []): Promise<string> {
    const r = await runMr(['submit', '--coordinator', url, '--app', app, '--output', '.', ...extra, ...this.inputs], { cwd: this.cwd, env: this.env });
    if (r.code !== 0) throw new Error(`mr submit exited ${r.code}: ${r.stderr}`);
    return r.stdout.trim().split('\n')[0]!;
  }

  /** The sequential reference (mr seq over the same ../pg-*.txt inputs, like the lab), as sorted non-empty lines. */
  async reference(app: string): Promise<Buffer[]> {
    const out = join(this.root, `seq-${app}`);
    const r = await runMr(['seq', '--app', app, '--output', out, ...this.inputs], { cwd: this.cwd, env: this.env });
    if (r.code !== 0) throw new Error(`mr seq exited ${r.code}: ${r.stderr}`);
    return sortedLines(out);
  }

  /** `LC_ALL=C sort mr-out* | grep .` in cwd. */
  sortedOutput(): Buffer[] {
    return sortedLines(this.cwd);
  }

  /** `cat mr-out*` in cwd (glob order), as text lines (the trailing newline gives no extra line). */
  catOutput(): string[] {
    const text = outFiles(this.cwd).map((f) => readFileSync(join(this.cwd, f), 'utf8')).join('');
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines;
  }

  /** `while coordinator alive: worker; sleep 1` (the crash test's restart loop). */
  async restartLoop(url: string, coordinator: Proc, limitMs: number): Promise<number> {
    let started = 0;
    while (coordinator.alive) {
      const w = this.worker(url, limitMs);
      started++;
      await w.wait();
      await sleep(1000);
    }
    return started;
  }

  /** A short description of every process, for failure messages. */
  describe(): string {
    return this.procs
      .map((p) => `${p.name} pid ${p.pid}: ${p.alive ? 'running' : JSON.stringify(p.exit)}${p.stderr ? `\n  stderr: ${p.stderr.trim().slice(-800).replace(/\n/g, '\n  ')}` : ''}`)
      .join('\n');
  }
}

function outFiles(dir: string): string[] {
  // The shell's glob order (C locale for these ASCII names).
  return readdirSync(dir)
    .filter((f) => f.startsWith('mr-out'))
    .sort();
}

/** All lines of dir/mr-out*, empty ones dropped, sorted by bytes (LC_ALL=C sort | grep .). */
export function sortedLines(dir: string): Buffer[] {
  const lines: Buffer[] = [];
  for (const f of outFiles(dir)) {
    const buf = readFileSync(join(dir, f));
    let start = 0;
    for (let i = 0; i <= buf.length; i++) {
      if (i === buf.length || buf[i] === 0x0a) {
        if (i > start) lines.push(buf.subarray(start, i));
        start = i + 1;
      }
    }
  }
  return lines.sort(Buffer.compare);
}

/** Equality of two sorted line lists, with a readable first difference. */
export function diffLines(got: Buffer[], want: Buffer[]): string | undefined {
  const n = Math.max(got.length, want.length);
  for (let i = 0; i < n; i++) {
    const g = got[i];
    const w = want[i];
    if (!g || !w || !g.equals(w)) {
      return `outputs differ at sorted line ${i + 1} (got ${got.length} lines, want ${want.length}): got ${JSON.stringify(g?.toString() ?? '<end>')}, want ${JSON.stringify(w?.toString() ?? '<end>')}`;
    }
  }
  return undefined;
}

/**
 * Writes `clean` (a copy of `from`) and `to` (the same with `line` inserted after its first
 * `after` lines: a bad record); returns the inserted line's byte offset.
 */
export function withLine(from: string, to: string, clean: string, line: string, after: number): number {
  const lines = readFileSync(from, 'utf8').split('\n');
  writeFileSync(clean, lines.join('\n'));
  const head = lines.slice(0, after).join('\n') + '\n';
  writeFileSync(to, head + line + '\n' + lines.slice(after).join('\n'));
  return Buffer.byteLength(head);
}
