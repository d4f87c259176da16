/**
 * Child processes of `mr local`: each one a separate OS process running
 * `node bin/mr.js <args>`, its output appended to a log file, restarted
 * (after a short delay) when it dies unexpectedly, and stopped with SIGTERM
 * (then SIGKILL) on shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MR_BIN = fileURLToPath(new URL('../../bin/mr.js', import.meta.url));

export interface SupervisedOptions {
  name: string;
  /** Arguments after `mr`; a function so a restart can use fresh ones (e.g. a known port). */
  args: () => string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  logFile: string;
  restartDelayMs?: number;
  /** Called with each stdout line (after it is logged). */
  onLine?: (line: string) => void;
  /** Called when the process exits; `restarting` says whether it will be started again. */
  onExit?: (code: number | null, signal: NodeJS.Signals | null, restarting: boolean) => void;
  /**
   * false: an exit is not followed by a restart; the owner decides what to
   * do and calls restart() (e.g. the FT VM pair, whose nodes come back in a
   * different role). Default true.
   */
  autoRestart?: boolean;
}

export class Supervised {
  readonly opts: SupervisedOptions;
  child: ChildProcess | undefined;
  restarts = 0;
  #stopping = false;
  #log: WriteStream;
  #timer: NodeJS.Timeout | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(opts: SupervisedOptions) {
    this.opts = opts;
    mkdirSync(dirname(opts.logFile), { recursive: true });
    this.#log = createWriteStream(opts.logFile, { flags: 'a' });
    this.#start();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  #start(): void {
    const o = this.opts;
    this.#log.write(`--- ${new Date().toISOString()} starting: mr ${o.args().join(' ')}\n`);
    // stdin: a pipe we never write to; the child stops when it closes (we died), see bin/mr.js.
    const child = spawn(process.execPath, [MR_BIN, ...o.args()], { cwd: o.cwd, env: { ...o.env, MR_PARENT_PIPE: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.child = child;
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      this.#log.write(c);
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        o.onLine?.(line);
      }
    });
    child.stderr!.on('data', (c: Buffer) => this.#log.write(c));
    this.#exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        const restarting = !this.#stopping && o.autoRestart !== false;
        this.#log.write(`--- ${new Date().toISOString()} exited code=${code} signal=${signal}${restarting ? '; restarting' : ''}\n`);
        o.onExit?.(code, signal, restarting);
        if (restarting) {
          this.restarts++;
          this.#timer = setTimeout(() => this.#start(), o.restartDelayMs ?? 1000);
        }
        resolve();
      });
    });
  }

  /** Whether the process is running (started and not yet exited). */
  get running(): boolean {
    const c = this.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** Starts the process again (with fresh args()) if it is not running and not being stopped. */
  restart(): boolean {
    if (this.#stopping || this.running) return false;
    this.restarts++;
    this.#start();
    return true;
  }

  /** From now on an exit is final (e.g. a terminal's Ctrl-C reached the whole process group). */
  noRestart(): void {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    this.noRestart();
    if (this.#timer) clearTimeout(this.#timer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.#exited;
      clearTimeout(kill);
    }
    await new Promise<void>((r) => this.#log.end(() => r()));
  }
}
