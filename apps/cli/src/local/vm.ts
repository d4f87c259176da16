/**
 * The FT VM part of `mr local`: a storage node and a primary/backup pair
 * running the `kv` guest, each a separate OS process (`mr vm storage`,
 * `mr vm node`), plus the --demo client workload.
 *
 * Ports: with --port P (P > 0) the storage node listens on P+1, node a (the
 * first primary) on P+2 and node b (the first backup) on P+3; with --port 0
 * `mr local` picks free ones. A restarted process keeps the port it had.
 *
 * Supervision. The storage node is restarted in place (same port, same data).
 * A node of the pair is never restarted in its old role: the survivor has
 * taken over (or gone on alone), and a second "primary" would only be fenced
 * by test-and-set. Instead, once the survivor is the live primary without a
 * backup, the dead node comes back as a NEW backup with `--join <survivor>`
 * (state transfer), so the pair is protected again. A node that stopped
 * serving (it lost test-and-set after a partition) is restarted the same way.
 * If both nodes are gone, the VM's memory went with them (FT survives one
 * failure at a time): a fresh pair starts, at the next epoch.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { Supervised } from './supervisor.ts';
import type { LocalEnv, StartedSection } from './section.ts';

export interface VmOptions {
  /** Ports of the storage node and nodes a and b (chosen by `mr local`: --port P + 1..3, or free ones). */
  ports: { storage: number; a: number; b: number };
  host: string;
  /** Demo workload size. */
  demoRequests?: number;
  demoClients?: number;
}

export const VM_ID = 'vm1';
export const VM_GUEST = 'kv';
/**
 * Failure suspicion after 50 ticks of 20 ms = 1 s of silence (`mr vm node`'s
 * default is a few hundred ms). `mr local` runs ten processes on a developer's
 * machine, busy with builds and a cold tsx cache at first start; there a
 * stall that long is common, and each one would be a real (safe, but spurious)
 * failover. A kill -9 is still taken over within about a second.
 */
export const VM_SUSPECT_TICKS = 50;

/** The fields of GET /v1/vms/:id this section reads. */
interface NodeStatus {
  nodeId: string;
  role: string;
  live: boolean;
  epoch: number;
  icount: number;
  log: { sent: number; acked: number };
  peer: { state: string };
  hash: { icount: number; value: string };
  reason?: string;
}

/** Unref'd: a pending repair or poll never keeps a stopped `mr local` alive. */
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const LISTENING = /^vm .*listening on (http:\/\/[^\s"]+)$/;

/** One supervised process of the section, with the URL it listens on. */
class Member {
  readonly sup: Supervised;
  url = '';
  port: number;
  /** Arguments that decide the role at the next (re)start. */
  mode: string[];
  /** An exit the section caused on purpose (no repair). */
  expectExit = false;
  /** Repairs since the pair was last protected with this member in it (for backoff). */
  failures = 0;
  #waiter: { resolve(url: string): void; reject(err: Error): void } | undefined;

  constructor(
    readonly id: string,
    opts: {
      port: number;
      mode: string[];
      baseArgs: (m: Member) => string[];
      env: LocalEnv;
      cwd: string;
      logFile: string;
      autoRestart: boolean;
      onDeath: (m: Member, code: number | null, signal: NodeJS.Signals | null) => void;
    },
  ) {
    this.port = opts.port;
    this.mode = opts.mode;
    this.sup = new Supervised({
      name: `vm-${id}`,
      args: () => opts.baseArgs(this),
      cwd: opts.cwd,
      env: opts.env.childEnv,
      logFile: opts.logFile,
      autoRestart: opts.autoRestart,
      onLine: (line) => {
        const m = LISTENING.exec(line);
        if (!m) return;
        this.url = m[1]!;
        this.port = Number(new URL(this.url).port);
        const w = this.#waiter;
        this.#waiter = undefined;
        w?.resolve(this.url);
      },
      onExit: (code, signal) => {
        const w = this.#waiter;
        this.#waiter = undefined;
        if (w) w.reject(new Error(`vm ${id} exited (code ${code}, signal ${signal}) before listening; see ${opts.logFile}`));
        if (this.expectExit) {
          this.expectExit = false;
          return;
        }
        opts.onDeath(this, code, signal);
      },
    });
  }

  /** Resolves with the URL at the next "listening on" line; rejects if the process exits first. Call right after a (re)start. */
  listening(): Promise<string> {
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }
}

export async function startVm(env: LocalEnv, o: VmOptions): Promise<StartedSection> {
  const dir = join(env.data, 'vm');
  const logs = join(env.data, 'logs');
  mkdirSync(dir, { recursive: true });
  const token = env.childEnv['MR_TOKEN'] || undefined;
  // The nodes' and storage's own credential: the user's, or (MR_TOKEN without one) a fresh one no client holds.
  const peerToken = env.childEnv['MR_PEER_TOKEN'] || (token ? randomBytes(24).toString('base64url') : undefined);
  const vmEnv: LocalEnv = { ...env, childEnv: { ...env.childEnv, ...(peerToken ? { MR_PEER_TOKEN: peerToken } : {}) } };
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  // The nodes' ports are fixed before either starts: each names the other in --peers (the only
  // URLs it joins, streams its state to, or sends the peer credential to), also across restarts.
  const { a: portA, b: portB } = o.ports;
  const hostInUrl = o.host.includes(':') ? `[${o.host}]` : o.host;
  const peers = [portA, portB].map((p) => `http://${hostInUrl}:${p}`).join(',');
  let stopping = false;
  let repairs: Promise<void> = Promise.resolve();
  const members: Member[] = [];

  const status = async (url: string): Promise<NodeStatus | undefined> => {
    if (!url) return undefined;
    try {
      const r = await request(`${url}/v1/vms/${VM_ID}`, { headers, headersTimeout: 2000, bodyTimeout: 2000 });
      if (r.statusCode !== 200) {
        await r.body.dump();
        return undefined;
      }
      return (await r.body.json()) as NodeStatus;
    } catch {
      return undefined;
    }
  };

  /** Polls `fn` every 50 ms until it returns a value, `ms` pass, or `give` says to give up. */
  const poll = async <T>(ms: number, fn: () => Promise<T | undefined>, give: () => boolean = () => false): Promise<T | undefined> => {
    const deadline = Date.now() + ms;
    while (!stopping && !give() && Date.now() < deadline) {
      const v = await fn();
      if (v !== undefined) return v;
      await sleep(50);
    }
    return undefined;
  };

  /** Both statuses once `p` is the live primary and `b` its backup, acknowledging its log. */
  const protectedBy = async (p: Member, b: Member): Promise<{ p: NodeStatus; b: NodeStatus } | undefined> => {
    const [sp, sb] = await Promise.all([status(p.url), status(b.url)]);
    const ok = !!sp && !!sb && sp.live && sp.peer.state === 'connected' && sp.log.acked > 0 && sb.role === 'backup' && sb.epoch === sp.epoch && sb.log.sent > 0;
    return ok ? { p: sp, b: sb } : undefined;
  };

  /** The live primary and its backup, if the pair is protected now. */
  const currentPair = async () => {
    const [a, b] = [members[1]!, members[2]!];
    return (await protectedBy(a, b)) ? { primary: a, backup: b } : (await protectedBy(b, a)) ? { primary: b, backup: a } : undefined;
  };

  const storage = new Member('storage', {
    port: o.ports.storage,
    mode: [],
    // Only this VM, and only its two nodes, may claim it at storage.
    baseArgs: (m) => ['vm', 'storage', '--host', o.host, '--port', String(m.port), '--data', join(dir, 'storage'), '--vm', `${VM_ID}=a,b`],
    env: vmEnv,
    cwd: dir,
    logFile: join(logs, 'vm-storage.log'),
    autoRestart: true,
    onDeath: (_m, code, signal) => {
      // Said a moment later, and only if this is no shutdown (a Ctrl-C reaches every child at once).
      const line = `vm: storage node exited (code ${code}, signal ${signal}); restarting it on port ${storage.port} (the nodes retry until it is back)`;
      setTimeout(() => stopping || env.say(line), 300).unref();
    },
  });
  members.push(storage);

  const node = (id: string, port: number, mode: string[]) =>
    new Member(id, {
      port,
      mode,
      baseArgs: (m) => ['vm', 'node', '--id', id, '--host', o.host, '--port', String(m.port), '--peers', peers, '--storage', storage.url, '--guest', VM_GUEST, '--vm', VM_ID, '--suspect-ticks', String(VM_SUSPECT_TICKS), ...m.mode],
      env: vmEnv,
      cwd: dir,
      logFile: join(logs, `vm-${id}.log`),
      autoRestart: false,
      onDeath: (m, code, signal) => {
        if (stopping) return;
        repairs = repairs.then(() => repair(m, `code ${code}, signal ${signal}`)).catch((err: Error) => env.say(`vm: repair of node ${m.id} failed: ${err.message}`));
      },
    });

  /** Starts a member again and waits for it to listen (its exit, if any, queues another repair). */
  const restartMember = async (m: Member): Promise<boolean> => {
    if (!m.sup.restart()) return false;
    const l = m.listening();
    try {
      await l;
      return true;
    } catch {
      return false;
    }
  };

  /** Brings the pair back to protected after node `dead` exited. */
  const repair = async (dead: Member, how: string): Promise<void> => {
    // A Ctrl-C in a terminal reaches every child at once: give `mr local`'s own handler the moment to say so.
    await sleep(300);
    if (stopping || dead.sup.running) return;
    const backoffMs = dead.failures > 0 ? Math.min(30_000, 500 * 2 ** dead.failures) : 0;
    dead.failures++;
    env.say(`vm: node ${dead.id} exited (${how})${backoffMs ? `; it failed to come back before, waiting ${backoffMs / 1000} s` : ''}`);
    await sleep(backoffMs);
    if (stopping || dead.sup.running) return;
    const other = dead === members[1] ? members[2]! : members[1]!;
    if (other.sup.running) {
      const live = await poll(
        20_000,
        async () => {
          const s = await status(other.url);
          if (s?.role === 'stopped') return null; // the survivor cannot serve either
          return s && s.live && s.peer.state === 'none' ? s : undefined;
        },
        () => !other.sup.running,
      );
      if (stopping) return;
      if (live) {
        env.say(`vm: node ${other.id} is the live primary (epoch ${live.epoch}); restarting ${dead.id} as a new backup: --join ${other.url}`);
        dead.mode = ['--join', other.url];
        if (!(await restartMember(dead))) return;
        const p = await poll(30_000, () => protectedBy(other, dead), () => !dead.sup.running || !other.sup.running);
        if (p) {
          dead.failures = other.failures = 0;
          env.say(`vm: protected again: primary ${other.id} (pid ${other.sup.pid}), backup ${dead.id} (pid ${dead.sup.pid}), epoch ${p.p.epoch}`);
        }
        return;
      }
    }
    if (stopping) return;
    // No live primary to join: both nodes are gone (or the survivor stopped too).
    env.say(`vm: no live primary left (nodes ${dead.id} and ${other.id} both down or stopped): the VM's memory is lost (FT survives one failure at a time); starting a fresh pair at the next epoch`);
    const [a, b] = [members[1]!, members[2]!];
    for (const m of [a, b]) {
      if (m.sup.running) {
        m.expectExit = true;
        m.sup.child?.kill('SIGKILL');
        await new Promise<void>((r) => m.sup.child?.once('close', () => r()) ?? r());
      }
    }
    b.mode = ['--role', 'backup'];
    if (!(await restartMember(b))) return;
    a.mode = ['--role', 'primary', '--peer', b.url];
    if (!(await restartMember(a))) return;
    const p = await poll(30_000, () => protectedBy(a, b), () => !a.sup.running || !b.sup.running);
    if (p) {
      a.failures = b.failures = 0;
      env.say(`vm: fresh pair protected: primary a (pid ${a.sup.pid}), backup b (pid ${b.sup.pid}), epoch ${p.p.epoch}`);
    }
  };

  const stopAll = async () => {
    stopping = true;
    clearInterval(timers.monitor);
    await Promise.all(members.slice(1).map((m) => m.sup.stop()));
    await storage.sup.stop();
  };

  const timers: { monitor?: NodeJS.Timeout } = {};
  try {
    await storage.listening();
    const b = node('b', portB, ['--role', 'backup']);
    members.push(b);
    await b.listening();
    const a = node('a', portA, ['--role', 'primary', '--peer', b.url]);
    members.splice(1, 0, a);
    await a.listening();
  } catch (err) {
    await stopAll();
    throw err;
  }
  const [a, b] = [members[1]!, members[2]!];

  // A node that stopped serving (it lost test-and-set, e.g. after a partition) protects nothing: restart it as a backup.
  let checking = false;
  const monitor = setInterval(() => {
    if (checking || stopping) return;
    checking = true;
    void (async () => {
      for (const m of [a, b]) {
        if (!m.sup.running || !m.url) continue;
        const s = await status(m.url);
        if (s?.role === 'stopped' && !stopping) {
          env.say(`vm: node ${m.id} stopped serving (${s.reason ?? 'no reason given'}); restarting it as a backup of the live node`);
          m.sup.child?.kill('SIGTERM');
        }
      }
    })().finally(() => (checking = false));
  }, 2000);
  monitor.unref();
  timers.monitor = monitor;

  const nodesArg = `${a.url},${b.url}`;
  return {
    name: 'vm',
    urls: [
      { label: 'storage', url: storage.url },
      { label: 'node a (primary)', url: a.url },
      { label: 'node b (backup)', url: b.url },
    ],
    hints: [
      `FT VM ${VM_ID}, guest ${VM_GUEST}: pids storage ${storage.sup.pid}, a ${a.sup.pid}, b ${b.sup.pid}; logs in ${join(logs, 'vm-*.log')}`,
      `npx mr vm client --nodes ${nodesArg} incr x`,
      `curl -s ${a.url}/v1/vms/${VM_ID}    # role, epoch, instruction count, log, state hash`,
    ],
    demo: async () => {
      const pair = await poll(30_000, currentPair);
      if (!pair) {
        if (stopping) return true;
        env.say(`vm demo: the pair did not become protected within 30 s; see ${join(logs, 'vm-*.log')}`);
        return false;
      }
      return runDemo(env, {
        primary: pair.primary,
        backup: pair.backup,
        token,
        requests: o.demoRequests ?? 200,
        clients: o.demoClients ?? 4,
        status,
        poll,
      });
    },
    halt: () => {
      stopping = true;
      for (const m of members) m.sup.noRestart();
    },
    stop: stopAll,
  };
}

async function runDemo(
  env: LocalEnv,
  d: {
    primary: Member;
    backup: Member;
    token: string | undefined;
    requests: number;
    clients: number;
    status: (url: string) => Promise<NodeStatus | undefined>;
    poll: <T>(ms: number, fn: () => Promise<T | undefined>) => Promise<T | undefined>;
  },
): Promise<boolean> {
  const { runLoad, VmClient } = await import('@mr/vmft-client');
  const { primary: p, backup: b } = d;
  const nodes = [p.url, b.url];
  const st = await d.status(p.url);
  env.say(`vm demo: pair protected: primary ${p.id} (epoch ${st?.epoch}) streams its log to backup ${b.id}, which acknowledges it`);
  const key = 'demo';
  const checker = new VmClient({ nodes, vmId: VM_ID, token: d.token });
  try {
    // Exactly once: a retry of an answered request (same session and seq) gets the remembered answer.
    const first = await checker.incr(`${key}-retry`);
    const retry = await checker.requestAt({ session: first.session, seq: first.seq, ackBelow: first.seq }, { op: 'incr', key: `${key}-retry` });
    const remembered = retry.value === first.value && (await checker.get(`${key}-retry`)).value === String(first.value);
    env.say(
      `vm demo: session ${first.session}: incr seq ${first.seq} answered ${first.value}; its retry answered ${retry.value}` +
        (remembered ? ' (the remembered answer: applied once)' : ' (APPLIED AGAIN)'),
    );
    const before = Number((await checker.get(key)).value ?? 0);
    const r = await runLoad({ nodes, vmId: VM_ID, token: d.token, requests: d.requests, clients: d.clients, key, deadlineMs: 30_000 });
    const after = Number((await checker.get(key)).value ?? 0);
    const sorted = [...r.values].sort((x, y) => x - y);
    const once = r.answered === d.requests && sorted.every((v, i) => v === before + i + 1) && after === before + d.requests;
    env.say(
      `vm demo: ${r.answered}/${r.requests} unique incr requests from ${d.clients} clients answered in ${(r.elapsedMs / 1000).toFixed(2)} s; ` +
        `latency p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms`,
    );
    env.say(`vm demo: counter "${key}" = ${after}${once ? ' (every request applied exactly once)' : ` (expected ${before + d.requests}: some requests failed or were applied twice)`}`);
    for (const e of r.errors) env.say(`vm demo: error: ${e}`);

    // Same state at the same instruction: both nodes report the hash of a checkpoint both pass.
    const common = await d.poll(10_000, async () => {
      const [sp, sb] = await Promise.all([d.status(p.url), d.status(b.url)]);
      return sp && sb && sp.hash.value && sp.hash.icount === sb.hash.icount ? { sp, sb } : undefined;
    });
    let agree = false;
    if (common) {
      const { sp, sb } = common;
      agree = sp.hash.value === sb.hash.value;
      env.say(
        `vm demo: state hash at instruction ${sp.hash.icount}: primary ${p.id} ${sp.hash.value}, backup ${b.id} ${sb.hash.value}: ${agree ? 'equal' : 'DIFFERENT'}`,
      );
    } else env.say('vm demo: the nodes reported no common checkpoint within 10 s');
    env.say(
      `vm demo: watch a failover: run  npx mr vm client --nodes ${nodes.join(',')} --load 20000  ` +
        `and meanwhile  kill -9 ${p.sup.pid}  (node ${p.id}, the primary): node ${b.id} takes over, the load loses nothing, and mr local brings ${p.id} back as a new backup (--join)`,
    );
    return once && agree && remembered;
  } finally {
    await checker.close();
  }
}
