/**
 * The FT VM half: a storage node, a backup and a primary (`mr vm …`) on
 * loopback, optionally a fault proxy on the primary -> backup log channel;
 * concurrent clients (VmClient, which follows the live primary and retries
 * with the same request id) send a seeded mix of requests while both nodes'
 * GET /v1/vms/:id is polled the whole time. Every client operation is
 * recorded with its invoke and response times.
 */
import net from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { VmClient, ERR_VM_REJECTED } from '@mr/vmft-client';
import { checkCounter, checkOnePrimaryPerEpoch, checkRecoveries, createDrillRng, describeFault, vmRecovery, type AnswerSample, type FaultAction, type NodeSample, type Schedule, type VmWorkload } from '@mr/chaos';
import { FaultProxy } from './fault-proxy.ts';
import { drillEnv, Part, sleep } from './parts.ts';
import type { DrillClock, DrillShell, Verdicts } from './runner.ts';
import { checkHistory, type HistoryOp } from './history.ts';
import { MonitorScraper } from './monitors.ts';
import { isTapAction, Taps } from './taps.ts';

const VM = 'vm1';
const COUNTER = 'counter';
const KEYS = ['k0', 'k1', 'k2', 'k3'];
const POLL_MS = 25;
/** Nodes a drill may start (a, b, then joiners). */
const NODES_MAX = 4;
/** Clients go on this long after the last fault was carried out. */
const SETTLE_MS = 2000;

interface Status {
  nodeId: string;
  role: string;
  live: boolean;
  epoch: number;
  peer: { state: string; url?: string };
  log: { sent: number; acked: number };
  hash: { icount: number; value: string };
  reason?: string;
}

interface Node {
  id: string;
  url: string;
  part: Part;
}

export class VmShell implements DrillShell {
  readonly #env: NodeJS.ProcessEnv;
  #parts: Part[] = [];
  #nodes: Node[] = [];
  #proxy: FaultProxy | undefined;
  #samples: NodeSample[] = [];
  #answers: AnswerSample[] = [];
  #history: HistoryOp[] = [];
  #clients: VmClient[] = [];
  #polling = false;
  #pollers: Promise<void>[] = [];
  #epochAt = new Map<number, number>();
  #final: number | undefined;
  #lastRole = new Map<string, string>();
  /** The newest full status of each node. */
  #full = new Map<string, Status>();
  /** Backups started with --join: when, and when the pair was protected again. */
  #joins: { node: string; startedMs: number; upMs: number; protectedMs?: number }[] = [];
  #agree: { ok: boolean; detail: string } | undefined;
  #storageUrl = '';
  #ports: number[] = [];
  /** Faults carried out so far, and when the last one was done. */
  #executed = 0;
  #stopping = false;
  #lastFaultMs = 0;
  readonly #monitors = new MonitorScraper();
  /** Fault proxies in front of each node for the clients (proxyClients), by node id. */
  #clientProxies = new Map<string, FaultProxy>();
  readonly #taps = new Taps((link) => this.#links(link));

  constructor(
    readonly schedule: Schedule,
    readonly w: VmWorkload,
    readonly dir: string,
    readonly clock: DrillClock,
    env: NodeJS.ProcessEnv,
  ) {
    this.#env = drillEnv(env);
  }

  async #start(name: string, args: string[]): Promise<{ part: Part; url: string }> {
    const part = new Part(name, args, { cwd: this.dir, env: this.#env });
    this.#parts.push(part);
    const m = await part.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 60_000);
    return { part, url: m[1]! };
  }

  async setup(): Promise<void> {
    // Every node's port is chosen now: each node gets all of them as --peers (the allow-list a
    // join must come from), so a backup started later can join the primary. The storage node and
    // the backup start at once (a cold start takes seconds on a loaded machine); the primary only
    // once both listen: it reads its epoch from storage, and a backup that does not answer within
    // the suspicion window is one it goes on without.
    const [storagePort, ...nodePorts] = await freePorts(NODES_MAX + 1);
    this.#ports = nodePorts;
    const node = (id: string, extra: string[]) => this.#start(`node ${id}`, this.#nodeArgs(id, extra));
    this.#storageUrl = `http://127.0.0.1:${storagePort}`;
    const [, b] = await Promise.all([
      this.#start('storage', ['vm', 'storage', '--port', String(storagePort), '--data', join(this.dir, 'storage')]),
      node('b', ['--role', 'backup']),
    ]);
    let peer = b.url;
    if (this.w.proxyLogChannel) {
      this.#proxy = await FaultProxy.start(b.url, 'primary->backup');
      peer = this.#proxy.url;
    }
    const a = await node('a', ['--role', 'primary', '--peer', peer]);
    this.#nodes = [{ id: 'a', ...a }, { id: 'b', ...b }];
    if (this.w.proxyClients) for (const n of this.#nodes) this.#clientProxies.set(n.id, await FaultProxy.start(n.url, `clients->${n.id}`));
    this.#monitors.watch('storage', this.#storageUrl);
    for (const n of this.#nodes) this.#monitors.watch(`node ${n.id} (pid ${n.part.pid})`, n.url);
    const deadline = performance.now() + 30_000;
    for (;;) {
      const [sa, sb] = await Promise.all([status(a.url), status(b.url)]);
      if (sa?.live && sa.peer.state === 'connected' && sa.log.acked > 0 && sb?.role === 'backup' && sb.epoch === sa.epoch) break;
      if (performance.now() > deadline) throw new Error(`the backup did not start protecting the primary within 30 s (a: ${JSON.stringify(sa)}, b: ${JSON.stringify(sb)})`);
      await sleep(50);
    }
  }

  #poll(n: Node): Promise<void> {
    return (async () => {
      while (this.#polling) {
        const atMs = this.clock.now();
        const s = await status(n.url, 1000);
        if (s) {
          this.#full.set(n.id, s);
          this.#samples.push({ atMs, node: n.id, live: s.live, epoch: s.epoch, role: s.role });
          if (s.live && !this.#epochAt.has(s.epoch)) this.#epochAt.set(s.epoch, atMs);
          const role = `${s.role}${s.live ? ' (live)' : ''} epoch ${s.epoch}${s.reason ? `: ${s.reason}` : ''}`;
          if (this.#lastRole.get(n.id) !== role) {
            if (this.#lastRole.has(n.id)) this.clock.record('event', `node ${n.id}: ${role}`);
            this.#lastRole.set(n.id, role);
          }
        }
        await sleep(POLL_MS);
      }
    })();
  }

  async workload(): Promise<void> {
    this.#polling = true;
    this.#pollers = this.#nodes.map((n) => this.#poll(n));
    this.#monitors.start();
    const byUrl = {
      get: (url: string) => this.#nodes.find((n) => new URL(n.url).origin === url)?.id ?? [...this.#clientProxies].find(([, p]) => p.url === url)?.[0],
    };
    // With proxyClients the clients know the nodes by their proxies (a hint to a node's own URL is followed directly).
    const nodeUrls = () => this.#nodes.map((n) => this.#clientProxies.get(n.id)?.url ?? n.url);
    const runClient = async (c: number) => {
      const clientId = `c${c}`;
      const client = new VmClient({ nodes: nodeUrls(), vmId: VM, attemptTimeoutMs: 1500, deadlineMs: 20_000, connections: 1 });
      this.#clients.push(client);
      const rng = createDrillRng((this.schedule.seed ^ Math.imul(c + 1, 0x85ebca6b)) >>> 0);
      let n = 0;
      while (this.#keepGoing()) {
        const r = rng.range(0, 99);
        const key = r < 55 || r >= 90 ? COUNTER : rng.pick(KEYS);
        const op = r < 55 ? 'incr' : r < 70 ? 'put' : 'get';
        const value = op === 'put' ? `${clientId}-${++n}` : undefined;
        const h: HistoryOp = { clientId, op, key, ...(value !== undefined ? { value } : {}), invoke: this.clock.now(), result: 'unknown' };
        this.#history.push(h);
        try {
          const a = await client.request({ op, key, value });
          h.response = this.clock.now();
          h.result = { value: a.value === null ? null : String(a.value) };
          this.#answers.push({ atMs: h.response, node: byUrl.get(a.node) ?? a.node });
        } catch (err) {
          if ((err as { code?: string }).code === ERR_VM_REJECTED.code) {
            h.response = this.clock.now();
            h.result = { error: 'refused' };
            continue;
          }
          // Gave up: the outcome is unknown; this client sends nothing more (one operation at a time per client).
          this.clock.record('event', `client ${clientId} gave up on ${op} ${key}: ${(err as Error).message.slice(0, 200)}`);
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: this.w.clients }, (_, c) => runClient(c)));
    // The final value of the counter, read from whoever is live.
    const reader = new VmClient({ nodes: nodeUrls(), vmId: VM, attemptTimeoutMs: 1500, deadlineMs: 20_000 });
    this.#clients.push(reader);
    const invoke = this.clock.now();
    const a = await reader.get(COUNTER);
    this.#final = a.value === null ? 0 : Number(a.value);
    const response = this.clock.now();
    this.#history.push({ clientId: 'drill-final-read', op: 'get', key: COUNTER, invoke, response, result: { value: a.value === null ? null : String(a.value) } });
    this.#answers.push({ atMs: response, node: byUrl.get(a.node) ?? a.node });
    this.clock.record('event', `final read: ${COUNTER} = ${this.#final} (from ${byUrl.get(a.node) ?? a.node})`);
    if (this.#joins.length > 0) this.#agree = await this.#replicasAgree(10_000);
    await sleep(300);
    this.#polling = false;
    await Promise.all([...this.#pollers, this.#monitors.stop()]);
  }

  /**
   * Clients keep sending until the stated duration is over, every fault was carried out (a cold
   * start of a joining node can take seconds on a loaded machine) and 2 s more have passed, and a
   * joined backup protects the primary (or the recovery bound passed).
   */
  #keepGoing(): boolean {
    if (this.#stopping) return false;
    const now = this.clock.now();
    if (now < this.w.durationMs || this.#executed < this.schedule.faults.length || now < this.#lastFaultMs + SETTLE_MS) return true;
    return this.#joins.some((j) => j.protectedMs === undefined) && now < this.#lastFaultMs + this.schedule.recoveryBoundMs;
  }

  async #resolve(target: string): Promise<Node> {
    if (target === 'primary' || target === 'backup') {
      // The newest poll of each node (the pollers run every 25 ms); a fresh one if there is none.
      const st = await Promise.all(this.#nodes.map((n) => this.#latest(n.id) ?? status(n.url, 500)));
      // The live primary; else the node in the primary role with the newest epoch (a primary can
      // be briefly not live, e.g. while acks are late or it asks test-and-set).
      const newest = (ok: (s: Status) => boolean) => st.reduce((best, s, j) => (s && ok(s) && (best < 0 || s.epoch > st[best]!.epoch) ? j : best), -1);
      const live = newest((s) => s.live);
      const i = target === 'primary' ? (live >= 0 ? live : newest((s) => s.role === 'primary')) : st.findIndex((s) => s?.role === 'backup');
      if (i < 0) throw new Error(`no node is ${target} now (${st.map((s, j) => `${this.#nodes[j]!.id}: ${s ? `${s.role}${s.live ? ' live' : ''}` : 'no answer'}`).join(', ')})`);
      return this.#nodes[i]!;
    }
    const n = this.#nodes.find((x) => x.id === target);
    if (!n) throw new Error(`no process "${target}" in this drill`);
    return n;
  }

  #latest(node: string): Status | undefined {
    for (let i = this.#samples.length - 1; i >= 0; i--) {
      const s = this.#samples[i]!;
      if (s.node === node) return this.clock.now() - s.atMs < 500 ? ({ nodeId: node, role: s.role, live: s.live, epoch: s.epoch } as Status) : undefined;
    }
    return undefined;
  }

  async exec(action: FaultAction): Promise<{ text: string; atMs: number }> {
    try {
      return await this.#exec(action);
    } finally {
      this.#executed++;
      this.#lastFaultMs = this.clock.now();
    }
  }

  async #links(link: string): Promise<{ name: string; proxy: FaultProxy }[]> {
    const m = /^clients->(.+)$/.exec(link);
    const id = m?.[1] === 'primary' ? (await this.#resolve('primary')).id : m?.[1];
    const proxy = id === undefined ? undefined : this.#clientProxies.get(id);
    if (!proxy) throw new Error(`no fault proxy on link ${link} (this drill has ${[...this.#clientProxies.keys()].map((k) => `clients->${k}`).join(', ') || 'none'})`);
    return [{ name: `clients->${id}`, proxy }];
  }

  async #exec(action: FaultAction): Promise<{ text: string; atMs: number }> {
    if (isTapAction(action)) {
      const atMs = this.clock.now();
      const text = await this.#taps.exec(action);
      return { text, atMs: (action.type === 'tap' && action.wait !== false) || action.type === 'await' ? this.clock.now() : atMs };
    }
    if (action.type === 'link') {
      if (action.link !== 'primary->backup' || !this.#proxy) throw new Error(`no fault proxy on link ${action.link}`);
      const atMs = this.clock.now();
      this.#proxy.set(action.fault);
      return { text: `proxy ${this.#proxy.url} -> :${this.#proxy.target.port} (${this.#proxy.openConnections} open connections)`, atMs };
    }
    if (action.type === 'start') {
      if (action.target !== 'backup') throw new Error(`only a new backup can be started (--join), not ${action.target}`);
      return this.#join();
    }
    // A `cont` goes to the node the matching `stop` stalled.
    const n = action.type === 'cont' ? this.#nodes.find((x) => x.part.stopped) : await this.#resolve(action.target);
    if (!n) throw new Error(`no stalled node to continue`);
    const sig = action.type === 'kill' ? 'SIGKILL' : action.type === 'stop' ? 'SIGSTOP' : 'SIGCONT';
    const atMs = this.clock.now();
    if (!n.part.alive) return { text: `node ${n.id} was not running`, atMs };
    n.part.signal(sig);
    if (sig === 'SIGKILL') await n.part.exited;
    return { text: `${sig} node ${n.id} (pid ${n.part.pid})`, atMs };
  }

  #nodeArgs(id: string, extra: string[]): string[] {
    const i = id.charCodeAt(0) - 'a'.charCodeAt(0);
    return [
      'vm', 'node', '--id', id, '--port', String(this.#ports[i]), '--storage', this.#storageUrl, '--guest', 'kv', '--vm', VM,
      '--suspect-ticks', String(this.w.suspectTicks), '--peers', this.#ports.map((p) => `http://127.0.0.1:${p}`).join(','), ...breakRuleArgs(this.w.breakRule, id), ...extra,
    ];
  }

  /** Starts a new backup that joins the live primary by state transfer, and watches until the pair is protected again. */
  async #join(): Promise<{ text: string; atMs: number }> {
    // The survivor is live once it won test-and-set for going on alone: join that one.
    let primary: Node | undefined;
    const deadline = this.clock.now() + this.schedule.recoveryBoundMs;
    while (!primary) {
      primary = await this.#resolve('primary').catch((err: Error) => {
        if (this.clock.now() > deadline) throw err;
        return undefined;
      });
      if (!primary) await sleep(POLL_MS);
    }
    const id = String.fromCharCode('a'.charCodeAt(0) + this.#nodes.length);
    const atMs = this.clock.now();
    if (this.#nodes.length >= NODES_MAX) throw new Error(`at most ${NODES_MAX} nodes in a drill`);
    const started = await this.#start(`node ${id}`, this.#nodeArgs(id, ['--join', primary.url]));
    const node: Node = { id, ...started };
    this.#nodes.push(node);
    this.#pollers.push(this.#poll(node));
    this.#monitors.watch(`node ${id} (pid ${started.part.pid})`, started.url);
    const join: { node: string; startedMs: number; upMs: number; protectedMs?: number } = { node: id, startedMs: atMs, upMs: this.clock.now() };
    this.#joins.push(join);
    void (async () => {
      while (this.#polling && join.protectedMs === undefined) {
        const p = this.#full.get(primary.id);
        const b = this.#full.get(id);
        if (p?.live && p.peer.state === 'connected' && b?.role === 'backup' && b.epoch === p.epoch && b.log.sent > 0) {
          join.protectedMs = this.clock.now();
          this.clock.record('event', `protected again: node ${id} backs up node ${primary.id} (epoch ${p.epoch})`);
        }
        await sleep(POLL_MS);
      }
    })();
    return { text: `node ${id} (pid ${started.part.pid}) joining node ${primary.id} at ${started.url}`, atMs };
  }

  /** The joined backup and the primary report the same state hash at the same instruction count. */
  async #replicasAgree(ms: number): Promise<{ ok: boolean; detail: string }> {
    const deadline = performance.now() + ms;
    let last = '';
    while (performance.now() < deadline) {
      const st = await Promise.all(this.#nodes.map(async (n) => ({ n, s: await status(n.url, 1000) })));
      const p = st.find((x) => x.s?.live);
      const b = st.find((x) => x.s?.role === 'backup' && p && x.s.epoch === p.s!.epoch);
      if (p && b) {
        last = `${p.n.id} ${p.s!.hash.value}@${p.s!.hash.icount}, ${b.n.id} ${b.s!.hash.value}@${b.s!.hash.icount}`;
        if (p.s!.hash.icount === b.s!.hash.icount) {
          return p.s!.hash.value === b.s!.hash.value
            ? { ok: true, detail: `node ${b.n.id} and the primary ${p.n.id} have state hash ${p.s!.hash.value} at instruction ${p.s!.hash.icount}` }
            : { ok: false, detail: `state hashes differ at instruction ${p.s!.hash.icount}: ${last}` };
        }
      }
      await sleep(50);
    }
    return { ok: false, detail: `no common checkpoint within ${ms} ms (${last || 'no primary with a backup'})` };
  }

  async verdicts(firedAt: (number | undefined)[]): Promise<Verdicts> {
    const incrs = this.#history.filter((h) => h.op === 'incr' && h.key === COUNTER);
    const answers = incrs.flatMap((h) => (h.result !== 'unknown' && 'value' in h.result && h.result.value !== null ? [Number(h.result.value)] : []));
    const unknown = incrs.filter((h) => h.result === 'unknown').length;
    const epoch0 = Math.min(...this.#samples.filter((s) => s.live).map((s) => s.epoch));
    const recoveries = [];
    let failover: number | null = null;
    const faults = this.schedule.faults;
    for (let i = 0; i < faults.length; i++) {
      const f = faults[i]!;
      const a = f.action;
      const at = firedAt[i];
      const disruptive = a.type === 'kill' || a.type === 'stop' || (a.type === 'link' && (a.fault.blackhole || a.fault.reset)) || (a.type === 'tap' && a.effect !== 'observe');
      if (!disruptive || at === undefined) continue;
      // The fault ends when the next fault on the same target undoes it (SIGCONT, heal); a kill ends at once.
      const ends = (g: FaultAction): boolean => (a.type === 'stop' ? g.type === 'cont' : a.type === 'tap' ? g.type === 'release' : g.type === 'link');
      const j = a.type === 'kill' || (a.type === 'tap' && a.effect === 'reset') ? i : faults.findIndex((g, k) => k > i && ends(g.action));
      const r = vmRecovery(describeFault(f), at, (j >= 0 ? firedAt[j] : undefined) ?? at, epoch0, this.#samples, this.#answers);
      recoveries.push({ fault: r.fault, what: r.what, recoveredMs: r.recoveredMs });
      if (r.failoverMs !== null) failover = r.failoverMs;
    }
    for (const j of this.#joins) {
      // Measured from when the new node listened: its process's cold start is not the pair's recovery.
      recoveries.push({
        fault: `+${Math.round(j.startedMs)}ms start backup (node ${j.node}, listening after ${Math.round(j.upMs - j.startedMs)} ms, joins)`,
        what: 'protected again: the new backup follows the primary (from when it listened)',
        recoveredMs: j.protectedMs === undefined ? null : Math.round(j.protectedMs - j.upMs),
      });
    }
    const lin = checkHistory(this.#history);
    const invariants = [
      { id: 'one-live-primary-per-epoch', ...checkOnePrimaryPerEpoch(this.#samples) },
      { id: 'no-ack-lost-or-doubled', ...(this.#final === undefined ? { ok: false, detail: 'no final read' } : checkCounter(answers, unknown, this.#final)) },
      { id: 'linearizable', ...lin },
      ...(this.#joins.length > 0 ? [{ id: 'replicas-agree', ...(this.#agree ?? { ok: false, detail: 'not checked (the workload did not finish)' }) }] : []),
      { id: 'monitors-zero', ...this.#monitors.verdict() },
      { id: 'recovered-within-bound', ...checkRecoveries(recoveries, this.schedule.recoveryBoundMs) },
    ];
    const ops = this.#history.filter((h) => h.response !== undefined).length;
    const lastAt = Math.max(...this.#history.map((h) => h.response ?? 0));
    return {
      invariants,
      recoveries,
      stats: {
        'client operations answered': ops,
        'client operations with unknown outcome': this.#history.length - ops,
        'incr answers': answers.length,
        'final counter': this.#final ?? 'unread',
        'throughput ops/s': lastAt > 0 ? Math.round((ops / lastAt) * 1000) : 0,
        'failover ms (fault -> a node live in a newer epoch)': failover ?? 'no failover',
        'status samples': this.#samples.length,
        'epochs seen live': [...this.#epochAt.keys()].sort((x, y) => x - y).join(','),
        ...(this.#proxy ? { 'proxy connections': this.#proxy.stats.connections } : {}),
      },
      history: this.#history,
    };
  }

  async teardown(): Promise<void> {
    this.#stopping = true;
    this.#polling = false;
    this.#taps.close();
    await Promise.all(this.#clients.map((c) => c.close().catch(() => {})));
    for (const p of this.#parts) p.signal('SIGKILL');
    await Promise.all(this.#parts.map((p) => p.exited));
    await this.#proxy?.close();
    await Promise.all([...this.#clientProxies.values()].map((p) => p.close()));
    await Promise.all(this.#pollers);
  }
}

/**
 * The break-the-rule switch a node gets (with --drill-unsafe, without which it refuses them):
 * the output rule is broken on the first primary (a), test-and-set on the first backup (b: it
 * goes live without arbitration), deduplication on every node (they must run one program).
 */
export function breakRuleArgs(rule: VmWorkload['breakRule'], nodeId: string): string[] {
  const flag =
    rule === 'output-rule' && nodeId === 'a' ? '--no-output-rule'
    : rule === 'test-and-set' && nodeId === 'b' ? '--no-test-and-set'
    : rule === 'dedup' ? '--no-dedup'
    : undefined;
  return flag ? ['--drill-unsafe', flag] : [];
}

/** Free loopback ports, held open together so they are distinct, then released for the nodes to take. */
async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
    }
    return servers.map((srv) => (srv.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  }
}

async function status(url: string, timeoutMs = 2000): Promise<Status | undefined> {
  try {
    const r = await request(`${url}/v1/vms/${VM}`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    if (r.statusCode !== 200) {
      await r.body.text();
      return undefined;
    }
    return (await r.body.json()) as Status;
  } catch {
    return undefined;
  }
}
