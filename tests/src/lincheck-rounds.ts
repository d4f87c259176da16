/**
 * Fault rounds for the linearizability checker: a real storage node and primary/backup pair,
 * 4–8 concurrent clients doing get/put/append/incr over a few keys (retrying with the same ids
 * through VmClient), one fault in the middle, final reads of every key, then the recorded
 * history is checked.
 *
 * Faults:
 *   kill       kill -9 of the primary
 *   stall      SIGSTOP of the primary for 1–5 s, then SIGCONT
 *   partition  the link between primary and backup cut (either side may win test-and-set)
 *   join       kill -9 of the primary, a new backup joins the survivor by state transfer, then
 *              the survivor is killed too and the joined backup takes over
 */
import { VmClient } from '@mr/vmft-client';
import { TcpProxy } from '@mr/vm-node/testing';
import { checkKvHistory, type KvCheckReport } from '@mr/linearizability';
import { createRng, type Rng } from '@mr/sim';
import { VmCluster, vmStatus, until, waitProtected, SUSPECT_TICKS, type TestContext } from './vm-cluster.ts';
import { sleep } from './procs.ts';
import { HistoryRecorder, nextOp, ALL_KEYS } from './kv-history.ts';

export const FAULTS = ['kill', 'stall', 'partition', 'join'] as const;
export type Fault = (typeof FAULTS)[number];

export interface RoundOptions {
  fault: Fault;
  seed: number;
  /** Concurrent clients (default: 4–8 from the seed). */
  clients?: number;
  /**
   * Length of the workload around the fault: it runs a random [1/3, 1] of this before the
   * fault and [1/2, 1] of it after recovery (default 900 ms).
   */
  workloadMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface RoundResult {
  fault: Fault;
  seed: number;
  clients: number;
  /** What happened, e.g. "stalled the primary 2.3 s; b went live in epoch 2". */
  events: string[];
  operations: number;
  unknownOutcomes: number;
  /** Answered operations that took more than one attempt (retried with the same ids). */
  retried: number;
  failures: Record<string, number>;
  report: KvCheckReport;
  /** The recorded history as JSON lines, with the node and attempts of each answer. */
  dump: () => string;
  roundMs: number;
  checkMs: number;
}

/** Client options for the rounds: short attempts so a stalled node is left quickly, a long deadline so answers come. */
const CLIENT = { vmId: 'vm1', attemptTimeoutMs: 1000, deadlineMs: 60_000 } as const;

async function liveNode(urls: string[], ms: number): Promise<string> {
  return until('a live primary', ms, async () => {
    for (const u of urls) {
      const s = await vmStatus(u);
      if (s?.live && s.role === 'primary') return u;
    }
    return undefined;
  });
}

/** One round: start a pair, run the workload, inject the fault, check the history. */
export async function runRound(t: TestContext, o: RoundOptions): Promise<RoundResult> {
  const rng = createRng(o.seed);
  const started = performance.now();
  const log = (line: string): void => o.log?.(`${((performance.now() - started) / 1000).toFixed(1)} s ${line}`);
  const clients = o.clients ?? rng.range(4, 8);
  const events: string[] = [];
  const note = (s: string): void => {
    events.push(s);
    log(s);
  };

  const c = new VmCluster(t);
  await c.storage();
  // In a partition whoever suspects first asks test-and-set first; let the seed pick the faster side.
  const slowSide = o.fault === 'partition' ? rng.pick(['a', 'b']) : undefined;
  const slow = ['--suspect-ticks', String(SUSPECT_TICKS * 3)];
  const b = await c.node('b', ['--role', 'backup', ...(slowSide === 'b' ? slow : [])]);
  let peer = b.url;
  let proxy: TcpProxy | undefined;
  if (o.fault === 'partition') {
    proxy = await TcpProxy.start(b.url);
    t.after(() => proxy!.close());
    peer = proxy.url;
  }
  const a = await c.node('a', ['--role', 'primary', '--peer', peer, ...(slowSide === 'a' ? slow : [])]);
  await waitProtected(a.url, b.url);
  log('pair protected');
  // The node that joins in the join round: its URL is known to the clients from the start
  // (refused until it runs), as an operator would configure all three.
  const joinPort = o.fault === 'join' ? c.reservePort() : 0; // among every node's --peers
  const nodes = [a.url, b.url, ...(joinPort ? [`http://127.0.0.1:${joinPort}`] : [])];

  // The workload: each client one request at a time until told to stop.
  const rec = new HistoryRecorder();
  let stop = false;
  const vmClients: VmClient[] = [];
  const workers = Array.from({ length: clients }, async (_, i) => {
    const cid = `c${i}`;
    const r: Rng = rng.fork();
    const vc = new VmClient({ ...CLIENT, nodes });
    vmClients.push(vc);
    for (let n = 1; !stop; n++) {
      const { op, key, value } = nextOp(r, i, n);
      await rec.record(cid, op, key, value, () => vc.request({ op, key, ...(value !== undefined ? { value } : {}) }));
    }
  });
  t.after(() => Promise.all(vmClients.map((v) => v.close())));

  const workloadFailed = Promise.all(workers).then(
    () => undefined,
    (e: unknown) => e,
  );
  try {
    const w = o.workloadMs ?? 900;
    await sleep(rng.range(Math.round(w / 3), w));
    const opsBefore = rec.ops.length;
    switch (o.fault) {
      case 'kill': {
        a.proc.kill();
        const live = await liveNode([b.url], 30_000);
        note(`kill -9 of the primary after ${opsBefore} operations; ${live === b.url ? 'b' : '?'} went live`);
        break;
      }
      case 'stall': {
        const ms = rng.range(1000, 5000);
        process.kill(a.proc.pid, 'SIGSTOP');
        try {
          await sleep(ms);
        } finally {
          process.kill(a.proc.pid, 'SIGCONT');
        }
        const live = await liveNode(nodes, 30_000);
        note(`SIGSTOP of the primary for ${ms} ms after ${opsBefore} operations, then SIGCONT; ${live === a.url ? 'a' : 'b'} is live`);
        break;
      }
      case 'partition': {
        proxy!.cut();
        const settled = await until('one node live and one stopped', 30_000, async () => {
          const [sa, sb] = await Promise.all([vmStatus(a.url), vmStatus(b.url)]);
          if (!sa || !sb) return undefined;
          const live = [sa, sb].filter((s) => s.live);
          return live.length === 1 && [sa, sb].some((s) => s.role === 'stopped') ? live[0]! : undefined;
        });
        note(`cut the link after ${opsBefore} operations (slower to suspect: ${slowSide}); ${settled.nodeId} live in epoch ${settled.epoch}`);
        break;
      }
      case 'join': {
        a.proc.kill();
        await liveNode([b.url], 30_000);
        log('b live; starting c with --join b');
        const j = await c.node('c', ['--join', b.url, '--port', String(joinPort)]);
        log('c started');
        await waitProtected(b.url, j.url);
        const opsJoined = rec.ops.length;
        await sleep(rng.range(200, 800));
        b.proc.kill();
        await liveNode([j.url], 30_000);
        note(`kill -9 of a after ${opsBefore} operations, c joined b by state transfer (at ${opsJoined}), kill -9 of b; c went live`);
        break;
      }
    }
    await sleep(rng.range(Math.round(w / 2), w));
  } finally {
    stop = true;
  }
  const err = await workloadFailed;
  if (err) throw err;
  log(`workload done: ${rec.ops.length} operations`);
  for (const [code, m] of rec.failureSamples) log(`first ${code}: ${m}`);

  // Final reads, after every other operation: an acknowledged write that was lost shows here.
  const live = await liveNode(nodes, 30_000);
  const reader = new VmClient({ ...CLIENT, nodes: [live] });
  t.after(() => reader.close());
  for (const key of ALL_KEYS) await rec.record('final', 'get', key, undefined, () => reader.get(key));

  const t0 = performance.now();
  const report = checkKvHistory(rec.ops);
  const checkMs = performance.now() - t0;
  return {
    fault: o.fault,
    seed: o.seed,
    clients,
    events,
    operations: rec.ops.length,
    unknownOutcomes: report.unknownOutcomes,
    retried: [...rec.info.values()].filter((x) => x.attempts > 1).length,
    failures: Object.fromEntries(rec.failures),
    report,
    dump: () => rec.dump(),
    roundMs: performance.now() - started,
    checkMs,
  };
}

/** One line for a round. */
export function describeRound(r: RoundResult): string {
  const v = r.report.outcome === 'violation' ? `\n${r.report.violations.map((x) => x.explanation).join('\n')}` : '';
  const u = r.report.outcome === 'unknown' ? ` (undecided: ${r.report.undecided.map((x) => `${x.key}: ${x.reason}`).join('; ')})` : '';
  const f = Object.keys(r.failures).length ? `, failures ${JSON.stringify(r.failures)}` : '';
  return `${r.fault} seed ${r.seed}: ${r.report.outcome}${u}; ${r.operations} operations (${r.unknownOutcomes} unknown, ${r.retried} retried) from ${r.clients} clients${f}; round ${(r.roundMs / 1000).toFixed(1)} s, check ${r.checkMs.toFixed(0)} ms; ${r.events.join('; ')}${v}`;
}
