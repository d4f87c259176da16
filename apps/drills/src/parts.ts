/**
 * The processes a drill starts: `node apps/cli/bin/mr.js …` children with
 * their output captured (the tail), signals sent by pid, and every one of
 * them killed when the drill ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MR_BIN = fileURLToPath(new URL('../../cli/bin/mr.js', import.meta.url));

/** Output kept per process (the tail), for reports on failure. */
const OUTPUT_KEEP_CHARS = 64 * 1024;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Part {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  stdout = '';
  stderr = '';
  exit: ExitInfo | undefined;
  /** Set when the drill (not the process itself) ended it. */
  killedByDrill = false;
  stopped = false;

  constructor(
    readonly name: string,
    readonly args: string[],
    opts: { cwd: string; env: NodeJS.ProcessEnv },
  ) {
    this.child = spawn(process.execPath, [MR_BIN, ...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (s: string) => (s.length > OUTPUT_KEEP_CHARS ? s.slice(-OUTPUT_KEEP_CHARS) : s);
    this.child.stdout!.setEncoding('utf8').on('data', (c: string) => (this.stdout = keep(this.stdout + c)));
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr = keep(this.stderr + c)));
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  signal(sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT' | 'SIGTERM'): boolean {
    if (!this.alive) return false;
    if (sig === 'SIGKILL') this.killedByDrill = true;
    if (sig === 'SIGSTOP') this.stopped = true;
    if (sig === 'SIGCONT') this.stopped = false;
    return this.child.kill(sig);
  }

  /** Resolves with the first stdout match of `re`; rejects if the process exits first or after `ms`. */
  waitFor(re: RegExp, ms = 60_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${this.name} did not print ${re} within ${ms} ms\n${this.tail()}`)), ms);
      const check = () => {
        const m = re.exec(this.stdout);
        if (m) finish(undefined, m);
      };
      const finish = (err?: Error, m?: RegExpMatchArray) => {
        clearTimeout(timer);
        this.child.stdout!.off('data', check);
        if (err) reject(err);
        else resolve(m!);
      };
      this.child.stdout!.on('data', check);
      check();
      void this.exited.then(() => {
        check();
        finish(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before printing ${re}\n${this.tail()}`));
      });
    });
  }

  tail(chars = 1500): string {
    return `--- ${this.name} stdout:\n${this.stdout.slice(-chars)}\n--- ${this.name} stderr:\n${this.stderr.slice(-chars)}`;
  }
}

/** Runs `mr …` to completion and returns its output. */
export async function runMr(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; limitMs: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new Part(`mr ${args[0]}`, args, opts);
  const timer = setTimeout(() => p.signal('SIGKILL'), opts.limitMs);
  const e = await p.exited;
  clearTimeout(timer);
  if (p.killedByDrill) throw new Error(`mr ${args.join(' ')} ran past ${opts.limitMs} ms\n${p.tail()}`);
  return { code: e.code, stdout: p.stdout, stderr: p.stderr };
}

/** The environment of the parts a drill starts: dev mode (no tokens, loopback only), no trace export, no colour. */
export function drillEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, FORCE_COLOR: '0' };
  for (const k of ['MR_TOKEN', 'MR_WORKER_TOKEN', 'MR_PEER_TOKEN', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'NODE_TEST_CONTEXT', 'MR_PARENT_PIPE']) delete env[k];
  return env;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
