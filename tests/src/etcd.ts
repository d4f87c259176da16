/**
 * A three-member (or N-member) etcd v3 cluster for the arbitration tests:
 * Debian's `etcd` binary (package etcd-server, installed by .ci/run) started by
 * the test itself on free ports, each member with its own temp data dir, every
 * member killed and the dirs removed when the test ends. Nothing runs as a
 * system service. Members may run inside network namespaces (pass `hosts`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './vm-cluster.ts';
import { sleep } from './procs.ts';

export const ETCD_BIN = '/usr/bin/etcd';

interface TestLike {
  after(fn: () => void | Promise<void>): void;
  skip(message?: string): void;
}

/** Why etcd cannot run here, or undefined. */
export function etcdUnavailable(): string | undefined {
  try {
    execFileSync(ETCD_BIN, ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${ETCD_BIN} is not installed (apt-get install -y --no-install-recommends etcd-server): the etcd arbitration tests need it`;
  }
}

/** Skips the test (or, under CI, fails it) when etcd is missing; true when it may go on. */
export function needEtcd(t: TestLike): boolean {
  const why = etcdUnavailable();
  if (!why) return true;
  if (process.env['CI']) throw new Error(`${why} (.ci/run installs etcd-server)`);
  t.skip(why);
  return false;
}

export interface EtcdMember {
  name: string;
  /** Client URL (http://ADDR:PORT). */
  client: string;
  /** Its `HOST:PORT`, as `--storage etcd://…` takes it. */
  endpoint: string;
  proc: ChildProcess | undefined;
}

export class EtcdCluster {
  readonly members: EtcdMember[];
  readonly #dir: string;
  readonly #peers: string[];
  readonly #prefix: ((i: number) => string[]) | undefined;
  readonly #exited = new Map<string, Promise<void>>();
  stderr = '';

  /**
   * `addrs[i]`: the address member i listens on (default 127.0.0.1); `prefix(i)`: a command that
   * runs it elsewhere (e.g. `ip netns exec NS`). Ports: free loopback ports unless `ports` gives them.
   */
  private constructor(t: TestLike, addrs: string[], ports: number[], prefix?: (i: number) => string[]) {
    this.#dir = mkdtempSync(join(tmpdir(), 'mr-etcd-'));
    this.#prefix = prefix;
    this.members = addrs.map((a, i) => ({ name: `e${i + 1}`, client: `http://${a}:${ports[2 * i]}`, endpoint: `${a}:${ports[2 * i]}`, proc: undefined }));
    this.#peers = addrs.map((a, i) => `http://${a}:${ports[2 * i + 1]}`);
    t.after(async () => {
      for (const m of this.members) m.proc?.kill('SIGKILL');
      await Promise.all(this.#exited.values());
      rmSync(this.#dir, { recursive: true, force: true });
    });
  }

  /** Starts `n` members on 127.0.0.1 (or on `addrs`), waits until the cluster answers. */
  static async start(t: TestLike, opts: { members?: number; addrs?: string[]; ports?: number[]; prefix?: (i: number) => string[] } = {}): Promise<EtcdCluster> {
    const addrs = opts.addrs ?? Array.from({ length: opts.members ?? 3 }, () => '127.0.0.1');
    const ports = opts.ports ?? (await freePorts(addrs.length * 2));
    const c = new EtcdCluster(t, addrs, ports, opts.prefix);
    for (let i = 0; i < c.members.length; i++) c.#spawn(i);
    await c.healthy();
    return c;
  }

  get endpoints(): string {
    return this.members.map((m) => m.endpoint).join(',');
  }

  #spawn(i: number): void {
    const m = this.members[i]!;
    const cluster = this.members.map((x, j) => `${x.name}=${this.#peers[j]}`).join(',');
    const args = [
      '--name', m.name, '--data-dir', join(this.#dir, m.name),
      '--listen-client-urls', m.client, '--advertise-client-urls', m.client,
      '--listen-peer-urls', this.#peers[i]!, '--initial-advertise-peer-urls', this.#peers[i]!,
      '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `mr-test-${process.pid}`,
      '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn', '--logger', 'zap',
    ];
    const pre = this.#prefix?.(i) ?? [];
    const [cmd, ...rest] = [...pre, ETCD_BIN, ...args];
    const proc = spawn(cmd!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr = (this.stderr + c).slice(-20_000)));
    m.proc = proc;
    this.#exited.set(`${m.name}-${proc.pid}`, new Promise((r) => proc.once('close', () => r())));
  }

  /** kill -9 of member i. */
  kill(i: number): void {
    this.members[i]!.proc?.kill('SIGKILL');
  }

  /** Waits until a quorum answers (a linearizable read through any live member's /health). */
  async healthy(ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      for (const m of this.members) {
        if (!m.proc || m.proc.exitCode !== null) continue;
        try {
          const r = await fetch(`${m.client}/health`, { signal: AbortSignal.timeout(1000) });
          const body = (await r.json()) as { health?: string };
          if (body.health === 'true') return;
        } catch {
          // not yet
        }
      }
      if (Date.now() > end) throw new Error(`etcd cluster not healthy after ${ms} ms\n${this.stderr.slice(-3000)}`);
      await sleep(100);
    }
  }
}
