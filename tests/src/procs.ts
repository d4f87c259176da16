/**
 * Real OS processes for the multi-process tests: `node apps/cli/bin/mr.js …`
 * with a per-process time limit (like the lab's `timeout -k 2s 45s`), output
 * captured, and every child killed when the test ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MR_BIN = fileURLToPath(new URL('../../apps/cli/bin/mr.js', import.meta.url));

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  stdout = '';
  stderr = '';
  timedOut = false;
  exit: ExitInfo | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly name: string,
    args: string[],
    /** prefix: a command that runs node in another context, e.g. ['ip', 'netns', 'exec', NS] (it must exec node, so pid and kill reach it). */
    opts: { cwd: string; env: NodeJS.ProcessEnv; limitMs: number; prefix?: string[] },
  ) {
    const [cmd, ...pre] = [...(opts.prefix ?? []), process.execPath, MR_BIN, ...args];
    this.child = spawn(cmd!, pre, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (c: string) => (this.stdout += c));
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      this.child.kill('SIGKILL');
    }, opts.limitMs);
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        clearTimeout(this.#timer);
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

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  /** Waits for the exit; fails (with the captured stderr) if the process hit its time limit. */
  async wait(): Promise<ExitInfo> {
    const e = await this.exited;
    if (this.timedOut) throw new Error(`${this.name} (pid ${this.pid}) ran past its time limit and was killed\n--- stderr:\n${this.stderr.slice(-3000)}`);
    return e;
  }

  /** Resolves with the first stdout match of `re`; rejects if the process exits first. */
  waitFor(re: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this.stdout);
        if (m) {
          this.child.stdout!.off('data', check);
          resolve(m);
        }
      };
      this.child.stdout!.on('data', check);
      check();
      void this.exited.then(() => {
        check();
        reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before printing ${re}\n--- stdout:\n${this.stdout}\n--- stderr:\n${this.stderr.slice(-3000)}`));
      });
    });
  }
}

/** Runs `mr …` to completion (e.g. mr seq, mr submit) and returns its output. */
export async function runMr(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; limitMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new Proc(`mr ${args[0]}`, args, { ...opts, limitMs: opts.limitMs ?? 60_000 });
  const e = await p.wait();
  return { code: e.code, stdout: p.stdout, stderr: p.stderr };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The environment for an `mr local` under test: no token, no trace export, no colour. */
export function localEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0' };
  delete env['MR_TOKEN'];
  delete env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  return env;
}
