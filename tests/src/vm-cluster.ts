/**
 * An FT VM cluster of real processes for the multi-process tests: a storage
 * node and primary/backup nodes started with `mr vm …` on free ports, with
 * temp data dirs, every child killed when the test ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { VmStatus } from '@mr/vmft-protocol';
import { VmClient, isProtected } from '@mr/vmft-client';
import { Proc, sleep } from './procs.ts';

export interface TestContext {
  after(fn: () => unknown): void;
}

/** Ticks (20 ms) of silence before a test node suspects its peer. */
export const SUSPECT_TICKS = 50;

/** Free loopback ports, held open together so they are distinct, then released for the nodes to take. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
    }
    return servers.map((srv) => (srv.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  }
}

export class VmCluster {
  readonly dir: string;
  readonly procs: Proc[] = [];
  storageUrl = '';
  /**
   * The nodes' URLs, chosen before any node starts: every node gets them all
   * as --peers (the allow-list a join must come from), so a node started
   * later can join one started earlier.
   */
  peerUrls: string[] = [];
  #nextPeer = 0;
  readonly #nodes: number;
  readonly #limitMs: number;
  readonly #extraEnv: Record<string, string>;
  readonly #etcd: string | undefined;

  /**
   * `nodes`: how many nodes the test may start (their ports are reserved with the storage node);
   * `limitMs`: how long a process may run before it is killed (default 240 s);
   * `env`: set in every process's environment (e.g. an OTLP endpoint: none by default);
   * `etcd`: etcd endpoints (HOST:PORT,…): the nodes arbitrate there (`--storage etcd://… --disk STORAGE`).
   */
  constructor(t: TestContext, opts: { nodes?: number; limitMs?: number; env?: Record<string, string>; etcd?: string } = {}) {
    this.#extraEnv = opts.env ?? {};
    this.#etcd = opts.etcd;
    this.#nodes = opts.nodes ?? 8;
    this.#limitMs = opts.limitMs ?? 240_000;
    this.dir = mkdtempSync(join(tmpdir(), 'mr-vm-test-'));
    t.after(async () => {
      for (const p of this.procs) p.kill();
      await Promise.all(this.procs.map((p) => p.exited));
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  #env(): NodeJS.ProcessEnv {
    const env = { ...process.env };
    delete env['MR_TOKEN'];
    delete env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    return { ...env, ...this.#extraEnv };
  }

  async #start(name: string, args: string[]): Promise<{ proc: Proc; url: string }> {
    const proc = new Proc(name, args, { cwd: this.dir, env: this.#env(), limitMs: this.#limitMs });
    this.procs.push(proc);
    const m = await proc.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    return { proc, url: m[1]! };
  }

  async storage(): Promise<{ proc: Proc; url: string }> {
    const s = await this.#start('storage', ['vm', 'storage', '--port', '0', '--data', join(this.dir, 'storage')]);
    this.storageUrl = s.url;
    this.peerUrls = (await freePorts(this.#nodes)).map((p) => `http://127.0.0.1:${p}`);
    return s;
  }

  /**
   * `mr vm node …` on a free port (or the args' `--port`); extra args as given (e.g. ['--role', 'primary', '--peer', url]).
   * Failure suspicion is 1 s (50 ticks) unless the args say otherwise: the tests share a 2-core
   * machine with other suites, and a node starved for longer than the 300 ms default would
   * (safely, but needlessly) suspect a live peer.
   */
  node(id: string, args: string[]): Promise<{ proc: Proc; url: string }> {
    const suspect = args.includes('--suspect-ticks') ? [] : ['--suspect-ticks', String(SUSPECT_TICKS)];
    // A node may bring its own --port (see reservePort): it is among the --peers then too.
    const own = args.indexOf('--port');
    let port: string;
    if (own >= 0) port = args[own + 1]!;
    else {
      const url = this.peerUrls[this.#nextPeer++];
      if (!url) throw new Error(`VmCluster: more than ${this.#nodes} nodes; pass { nodes } to the constructor`);
      port = new URL(url).port;
    }
    const rest = own >= 0 ? [...args.slice(0, own), ...args.slice(own + 2)] : args;
    return this.#start(`node ${id}`, ['vm', 'node', '--id', id, '--port', port, '--peers', this.peerUrls.join(','), ...(this.#etcd ? ['--storage', `etcd://${this.#etcd}`, '--disk', this.storageUrl] : ['--storage', this.storageUrl]), '--guest', 'kv', ...suspect, ...rest]);
  }

  /**
   * Takes the port of a node the test will start later (pass it as that node's `--port`), for a
   * node whose URL clients must know before it starts. It is among every node's --peers.
   */
  reservePort(): number {
    const url = this.peerUrls[this.#nextPeer++];
    if (!url) throw new Error(`VmCluster: more than ${this.#nodes} nodes; pass { nodes } to the constructor`);
    return Number(new URL(url).port);
  }
}

/** A port that was free a moment ago (for a node whose URL clients must know before it starts). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function vmStatus(url: string, vm = 'vm1'): Promise<VmStatus | undefined> {
  return VmClient.status(url, { vmId: vm });
}

/** Polls until `pred` holds (or throws after `ms`, naming `what`). */
export async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Waits until the backup at `backupUrl` holds the primary's log stream and the primary has an ack from it. */
export async function waitProtected(primaryUrl: string, backupUrl: string, ms = 30_000, vm = 'vm1'): Promise<void> {
  await until(`${backupUrl} to back up ${primaryUrl}`, ms, async () => {
    const [p, b] = await Promise.all([vmStatus(primaryUrl, vm), vmStatus(backupUrl, vm)]);
    return isProtected(p, b);
  });
}

/**
 * Waits until a process has printed a line matching `re`. Its stdout arrives
 * through a pipe and can trail an HTTP answer that reflects the same event,
 * so poll instead of asserting on what has arrived so far.
 */
export function printed(proc: { stdout: string }, re: RegExp, ms = 10_000): Promise<true> {
  return until(`a line matching ${re}`, ms, async () => re.test(proc.stdout) || undefined);
}

/** Values 1..n, for comparing the answers of n unique incr requests. */
export function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}
