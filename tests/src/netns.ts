/**
 * "Hosts" for the multi-host tests: Linux network namespaces, each with its own
 * address on a veth pair attached to one bridge per test, so services bind to
 * real, distinct addresses and a partition is a link taken down.
 *
 *   const net = await NetLab.open(t, { hosts: 4 });     // skips (or fails under CI) without root
 *   const [h1, h2] = net.hosts;                          // h1.addr = 10.213.X.1, h2.addr = 10.213.X.2 …
 *   const p = net.spawnMr(h1, 'coordinator', ['coordinator', '--host', h1.addr, …], { cwd, env, limitMs });
 *   net.down(h2); … net.up(h2);                          // partition h2 from every other host, heal
 *
 * Layout of one lab (names carry the owner's pid, so leftovers of a crashed
 * run are recognised and removed by the next one):
 *
 *   bridge  mrn<pid36>x<n>b   10.213.X.254/24 in the test's own namespace (the test reaches every host)
 *   host i  netns mrn-<pid36>-<n>-h<i>: lo up, eth0 = 10.213.X.i/24 (veth, other end mrn<pid36>x<n>v<i> on the bridge)
 *
 * The namespaces have no default route: their traffic can only reach the
 * lab's own addresses. X (1…250) is taken with a lock file in /run/mr-netns,
 * so parallel tests (or test files) get distinct subnets. Everything is
 * removed when the test ends (t.after), when the process exits, and — for a
 * run that was killed — by the next lab opened on this machine.
 *
 * The kernel here has no netem: a link is up or down, nothing in between
 * (a down link drops packets silently: connects time out, no RST).
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Proc, alive } from './procs.ts';

export interface NetHost {
  /** Index from 1 (the last octet of its address). */
  readonly index: number;
  /** The namespace's name (for `ip netns exec`). */
  readonly ns: string;
  /** Its IPv4 address on the lab's bridge. */
  readonly addr: string;
  /** The bridge side of its veth pair (taken down to partition the host). */
  readonly link: string;
}

interface TestLike {
  after(fn: () => void | Promise<void>): void;
  skip(message?: string): void;
}

const LOCK_DIR = '/run/mr-netns';
const SUBNET = '10.213';
const PID36 = process.pid.toString(36);
const LINK_RE = /^mrn([0-9a-z]+)x/;
const NS_RE = /^mrn-([0-9a-z]+)-/;
let labs = 0;
const open = new Set<NetLab>();
let exitHook = false;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}

/**
 * Why namespaces cannot be used here, or undefined if they can: needs root and
 * a working `ip netns`.
 */
export function netnsUnavailable(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'the multi-host tests need root (network namespaces, veth, bridge); run as root';
  try {
    ip('netns', 'list');
    ip('-o', 'link', 'show', 'lo');
  } catch (err) {
    return `the multi-host tests need iproute2 with netns support: ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

/** Removes namespaces, links and subnet locks left by processes that are gone (a killed earlier run). */
export function cleanStale(): void {
  const dead = (pid36: string): boolean => {
    const pid = Number.parseInt(pid36, 36);
    return pid !== process.pid && !alive(pid);
  };
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = NS_RE.exec(name);
    if (m && dead(m[1]!)) tryIp('netns', 'del', name);
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '';
    const m = LINK_RE.exec(name);
    if (m && dead(m[1]!)) tryIp('link', 'del', name);
  }
  let locks: string[] = [];
  try {
    locks = readdirSync(LOCK_DIR);
  } catch {
    return;
  }
  for (const f of locks) {
    const owner = Number(readFileSync(join(LOCK_DIR, f), 'utf8').trim());
    if (owner !== process.pid && !alive(owner)) rmSync(join(LOCK_DIR, f), { force: true });
  }
}

/** Takes a free /24 (its third octet) with an exclusive lock file. */
function takeSubnet(): number {
  mkdirSync(LOCK_DIR, { recursive: true });
  const start = 1 + Math.floor(Math.random() * 250);
  for (let k = 0; k < 250; k++) {
    const x = 1 + ((start + k) % 250);
    try {
      const fd = openSync(join(LOCK_DIR, String(x)), 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return x;
    } catch {
      // taken
    }
  }
  throw new Error(`no free subnet ${SUBNET}.1-250.0/24: ${LOCK_DIR} is full`);
}

export class NetLab {
  readonly hosts: NetHost[];
  /** The test's own address on the bridge (the namespaces reach it; nothing routes beyond). */
  readonly gateway: string;
  readonly bridge: string;
  readonly #subnet: number;
  #closed = false;
  readonly #procs: Proc[] = [];
  readonly #children: { child: ChildProcess; exited: Promise<void> }[] = [];

  private constructor(hosts: number) {
    const n = ++labs;
    const id = `${PID36}x${n.toString(36)}`;
    this.#subnet = takeSubnet();
    this.bridge = `mrn${id}b`;
    this.gateway = `${SUBNET}.${this.#subnet}.254`;
    this.hosts = Array.from({ length: hosts }, (_, i) => ({
      index: i + 1,
      ns: `mrn-${PID36}-${n.toString(36)}-h${i + 1}`,
      addr: `${SUBNET}.${this.#subnet}.${i + 1}`,
      link: `mrn${id}v${i + 1}`,
    }));
    if (this.bridge.length > 15 || this.hosts.some((h) => h.link.length > 15)) throw new Error(`NetLab: interface name too long (${this.bridge})`);
  }

  /**
   * Creates `hosts` namespaces on one bridge and registers their removal with
   * `t.after`. Without root (or iproute2) it skips the test with the reason —
   * except under CI (CI=true), where it fails: CI runs as root and must run these tests.
   * Returns undefined when the test was skipped.
   */
  static async open(t: TestLike, opts: { hosts: number }): Promise<NetLab | undefined> {
    const why = netnsUnavailable();
    if (why) {
      if (process.env['CI']) throw new Error(`${why} (CI must run the multi-host tests)`);
      t.skip(why);
      return undefined;
    }
    if (opts.hosts < 1 || opts.hosts > 200) throw new Error(`NetLab: 1-200 hosts, got ${opts.hosts}`);
    cleanStale();
    const lab = new NetLab(opts.hosts);
    open.add(lab);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const l of open) l.#remove();
      });
    }
    t.after(() => lab.close());
    try {
      lab.#create();
    } catch (err) {
      await lab.close();
      throw err;
    }
    return lab;
  }

  #create(): void {
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('addr', 'add', `${this.gateway}/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
    for (const h of this.hosts) {
      ip('netns', 'add', h.ns);
      ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      ip('link', 'add', h.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
      ip('link', 'set', h.link, 'master', this.bridge);
      ip('link', 'set', h.link, 'up');
      ip('-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', 'eth0');
      ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
    }
  }

  /** `http://ADDR:PORT` of a host. */
  url(h: NetHost, port: number): string {
    return `http://${h.addr}:${port}`;
  }

  /** The command prefix that runs a program inside the host's namespace. */
  prefix(h: NetHost): string[] {
    return ['ip', 'netns', 'exec', h.ns];
  }

  /**
   * Starts `mr ARGS…` inside the host's namespace (ip netns exec execs, so the
   * Proc's pid is the mr process itself: kill -9 kills it). Killed when the lab closes.
   */
  spawnMr(h: NetHost, name: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; limitMs: number }): Proc {
    const p = new Proc(name, args, { ...opts, prefix: this.prefix(h) });
    this.#procs.push(p);
    return p;
  }

  /**
   * Starts any program inside the host's namespace (e.g. a probe or a load client);
   * killed (SIGKILL) when the lab closes.
   */
  spawn(h: NetHost, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', h.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    const exited = new Promise<void>((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r();
      else child.once('close', () => r());
    });
    this.#children.push({ child, exited });
    return child;
  }

  /** Runs a program inside the host's namespace to completion (at most 30 s): its exit code and output. */
  exec(h: NetHost, cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', h.ns, cmd, ...args], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr: stderr || (err && !stderr ? String(err) : '') });
      });
    });
  }

  /** Partitions the host: its link to the bridge goes down (packets to and from it are dropped). */
  down(h: NetHost): void {
    ip('link', 'set', h.link, 'down');
  }

  /** Heals a partition made by down(). */
  up(h: NetHost): void {
    ip('link', 'set', h.link, 'up');
  }

  /** Whether the host's link is up. */
  isUp(h: NetHost): boolean {
    return /<[^>]*\bUP\b/.test(ip('-o', 'link', 'show', h.link));
  }

  /** Kills the lab's processes, then removes its namespaces, links and subnet lock. Idempotent. */
  async close(): Promise<void> {
    for (const p of this.#procs) p.kill();
    for (const c of this.#children) c.child.kill('SIGKILL');
    await Promise.all([...this.#procs.map((p) => p.exited), ...this.#children.map((c) => c.exited)]);
    this.#remove();
  }

  #remove(): void {
    if (this.#closed) return;
    this.#closed = true;
    open.delete(this);
    for (const h of this.hosts) {
      tryIp('link', 'del', h.link);
      tryIp('netns', 'del', h.ns);
    }
    tryIp('link', 'del', this.bridge);
    rmSync(join(LOCK_DIR, String(this.#subnet)), { force: true });
  }
}
