/**
 * The drill catalog and the pure function seed -> schedule. Every random
 * choice (which worker, when, for how long) is drawn here from a generator
 * seeded by the drill's seed, in a fixed order, so one seed gives one exact
 * schedule. The shell only carries it out.
 */
import { createError } from '@mr/errors';
import { createDrillRng, type DrillRng } from './rng.ts';
import { SCHEDULE_VERSION, type DrillScale, type Schedule, type ScheduledFault, type TapAction, type Workload, type MapReduceWorkload, type VmWorkload } from './schedule.ts';

export const ERR_UNKNOWN_DRILL = createError<[string, string]>('DRILL_ERR_UNKNOWN', 'unknown drill "%s"; known drills: %s', 400, { retryable: false });
export const ERR_NO_CONTROL = createError<[string]>('DRILL_ERR_NO_CONTROL', 'drill "%s" breaks no rule: it has no control run', 400, { retryable: false });
export const ERR_BAD_SEED = createError<[string]>('DRILL_ERR_BAD_SEED', 'bad seed: %s (an integer in [0, 4294967295])', 400, { retryable: false });

/** What each invariant id means (the report prints these). */
export const INVARIANTS: Record<string, string> = {
  'job-succeeded': 'every MapReduce job of the drill ended in state succeeded',
  'output-equals-seq': 'each job\'s output equals `mr seq` over the same inputs (sorted lines, byte for byte)',
  'one-live-primary-per-epoch': 'polling both nodes\' GET /v1/vms/:id during the drill never saw two live primaries in one epoch',
  'no-ack-lost-or-doubled': 'every acknowledged incr answer is distinct, the answers are exactly 1..n, and a final read equals the number of incrs applied',
  linearizable: 'the recorded client history (invoke/response times, answers) has a linearization under the kv model',
  'replicas-agree': 'a backup that joined by state transfer reports the same state hash as the primary at the same instruction count',
  'monitors-zero': 'every invariant monitor of every part (mr_invariant_violations_total, ft_invariant_violations_total on /metrics, scraped every 250 ms) stayed 0',
  'recovered-within-bound': 'after each disruptive fault the service was back (job done / a live primary answering) within the drill\'s bound',
};

export interface DrillDefinition {
  name: string;
  system: 'mapreduce' | 'vm';
  summary: string;
  invariants: string[];
  recoveryBoundMs: number;
  /** Break-the-rule drills: the invariants of which at least one must break (see Schedule.expectBroken). */
  expectBroken?: string[];
  /** Break-the-rule drills: invariants that may break too, as consequences of the anomaly (not counted against the drill). */
  mayBreak?: string[];
  /** Draws the workload parameters and the faults. Must only use `rng` for choices. */
  plan(rng: DrillRng, scale: DrillScale): { workload: Workload; faults: ScheduledFault[] };
}

const MR_INVARIANTS = ['job-succeeded', 'output-equals-seq', 'monitors-zero', 'recovered-within-bound'];
const VM_INVARIANTS = ['one-live-primary-per-epoch', 'no-ack-lost-or-doubled', 'linearizable', 'monitors-zero', 'recovered-within-bound'];

function mrWorkload(scale: DrillScale, workers: number): MapReduceWorkload {
  return scale === 'full'
    ? { system: 'mapreduce', app: 'wc', files: 12, wordsPerFile: 40_000, reduces: 8, workers, taskTimeoutMs: 2000 }
    : { system: 'mapreduce', app: 'wc', files: 6, wordsPerFile: 15_000, reduces: 4, workers, taskTimeoutMs: 2000 };
}

function vmWorkload(durationMs: number, proxyLogChannel = false, breakRule?: VmWorkload['breakRule']): VmWorkload {
  return { system: 'vm', clients: 4, durationMs, suspectTicks: 50, proxyLogChannel, ...(breakRule ? { breakRule } : {}) };
}

/** Blackhole the primary -> backup log channel at `at` for `cut` ms, then heal; clients go on `after` ms more. */
function partition(at: number, cut: number, after: number, breakRule?: VmWorkload['breakRule']): { workload: Workload; faults: ScheduledFault[] } {
  return {
    workload: vmWorkload(at + cut + after, true, breakRule),
    faults: [
      { atMs: at, action: { type: 'link', link: 'primary->backup', fault: { blackhole: true } } },
      { atMs: at + cut, action: { type: 'link', link: 'primary->backup', fault: {} } },
    ],
  };
}

export const CATALOG: readonly DrillDefinition[] = [
  {
    name: 'worker-crash-storm',
    system: 'mapreduce',
    summary: 'kill -9 workers one after another during a wc job and start each again a moment later',
    invariants: MR_INVARIANTS,
    recoveryBoundMs: 60_000,
    plan(rng, scale) {
      const workload = mrWorkload(scale, 4);
      const kills = scale === 'full' ? 8 : 3;
      const faults: ScheduledFault[] = [];
      // Which workers are down, and until when, so a kill always hits a running one.
      const downUntil = new Array<number>(workload.workers).fill(-1);
      let t = rng.range(200, 600);
      for (let k = 0; k < kills; k++) {
        const up = downUntil.map((d, i) => (d < t ? i : -1)).filter((i) => i >= 0);
        const i = rng.pick(up);
        const back = t + rng.range(200, 900);
        faults.push({ atMs: t, action: { type: 'kill', target: `worker-${i}` } });
        faults.push({ atMs: back, action: { type: 'start', target: `worker-${i}` } });
        downUntil[i] = back;
        t += rng.range(300, 1000);
      }
      return { workload, faults: sortFaults(faults) };
    },
  },
  {
    name: 'worker-stall',
    system: 'mapreduce',
    summary: 'SIGSTOP workers mid-task for longer than the task timeout, then SIGCONT: their tasks go to others, and the late completions of the stale attempts must be ignored',
    invariants: MR_INVARIANTS,
    recoveryBoundMs: 60_000,
    plan(rng, scale) {
      // More map tasks than the other drills: the job must outlast the stalls.
      const workload = { ...mrWorkload(scale, 4), files: scale === 'full' ? 20 : 10 };
      const stalls = scale === 'full' ? 4 : 2;
      const faults: ScheduledFault[] = [];
      const stalledUntil = new Array<number>(workload.workers).fill(-1);
      let t = rng.range(300, 800);
      for (let k = 0; k < stalls; k++) {
        const free = stalledUntil.map((d, i) => (d < t ? i : -1)).filter((i) => i >= 0);
        const i = rng.pick(free);
        // Longer than the task timeout, so that the stalled attempt is re-issued to another worker.
        const until = t + workload.taskTimeoutMs + rng.range(300, 1500);
        faults.push({ atMs: t, action: { type: 'stop', target: `worker-${i}` } });
        faults.push({ atMs: until, action: { type: 'cont', target: `worker-${i}` } });
        stalledUntil[i] = until;
        t += rng.range(300, 1000);
      }
      return { workload, faults: sortFaults(faults) };
    },
  },
  {
    name: 'coordinator-kill-restart',
    system: 'mapreduce',
    summary: 'kill -9 the coordinator mid-job and start it again on the same port and data dir; the job resumes from its journal',
    invariants: MR_INVARIANTS,
    recoveryBoundMs: 60_000,
    plan(rng, scale) {
      const workload = mrWorkload(scale, 3);
      const faults: ScheduledFault[] = [];
      let t = rng.range(400, 1200);
      for (let k = 0; k < (scale === 'full' ? 2 : 1); k++) {
        const back = t + rng.range(300, 1200);
        faults.push({ atMs: t, action: { type: 'kill', target: 'coordinator' } });
        faults.push({ atMs: back, action: { type: 'start', target: 'coordinator' } });
        // A cold start of the coordinator takes seconds on a loaded machine: leave it time to resume the job.
        t = back + rng.range(5000, 8000);
      }
      return { workload, faults };
    },
  },
  {
    name: 'primary-kill-under-load',
    system: 'vm',
    summary: 'kill -9 the FT VM primary while clients send requests; the backup takes over',
    invariants: VM_INVARIANTS,
    recoveryBoundMs: 10_000,
    plan(rng, scale) {
      const at = scale === 'full' ? rng.range(1500, 3000) : rng.range(800, 1500);
      return { workload: vmWorkload(at + (scale === 'full' ? 5000 : 3000)), faults: [{ atMs: at, action: { type: 'kill', target: 'primary' } }] };
    },
  },
  {
    name: 'primary-stall',
    system: 'vm',
    summary: 'SIGSTOP the primary for 1-5 s under load, then SIGCONT: the backup takes over and the old primary must not serve again',
    invariants: VM_INVARIANTS,
    recoveryBoundMs: 10_000,
    plan(rng, scale) {
      const at = scale === 'full' ? rng.range(1500, 2500) : rng.range(800, 1500);
      const stall = scale === 'full' ? rng.range(1000, 5000) : rng.range(1000, 2500);
      return {
        workload: vmWorkload(at + stall + 3000),
        faults: [
          { atMs: at, action: { type: 'stop', target: 'primary' } },
          { atMs: at + stall, action: { type: 'cont', target: 'primary' } },
        ],
      };
    },
  },
  {
    name: 'backup-kill-and-rejoin',
    system: 'vm',
    summary: 'kill -9 the backup under load (the primary goes on alone after test-and-set), then a new backup joins by state transfer (--join): protected again',
    invariants: [...VM_INVARIANTS.slice(0, -1), 'replicas-agree', 'recovered-within-bound'],
    recoveryBoundMs: 10_000,
    plan(rng, scale) {
      const at = scale === 'full' ? rng.range(1500, 2500) : rng.range(800, 1500);
      const back = at + rng.range(500, 1500);
      return {
        workload: vmWorkload(back + (scale === 'full' ? 5000 : 3000)),
        faults: [
          { atMs: at, action: { type: 'kill', target: 'backup' } },
          { atMs: back, action: { type: 'start', target: 'backup' } },
        ],
      };
    },
  },
  {
    name: 'primary-backup-partition',
    system: 'vm',
    summary: 'blackhole the primary -> backup log channel (fault proxy) under load, heal it later: exactly one side serves',
    invariants: VM_INVARIANTS,
    recoveryBoundMs: 10_000,
    plan(rng, scale) {
      const at = scale === 'full' ? rng.range(1500, 2500) : rng.range(800, 1500);
      const cut = scale === 'full' ? rng.range(2000, 4000) : rng.range(1500, 2500);
      return partition(at, cut, 3000);
    },
  },
  {
    name: 'break-output-rule',
    system: 'vm',
    summary: 'BREAK THE RULE: the primary releases answers before the backup acknowledged them (--no-output-rule); cut the log channel (blackhole, fault proxy) and kill -9 the primary 0.3-0.7 s later, before failure suspicion: what it answered meanwhile never reached the backup, and the checks must catch it',
    invariants: VM_INVARIANTS,
    expectBroken: ['no-ack-lost-or-doubled', 'linearizable', 'monitors-zero'],
    recoveryBoundMs: 10_000,
    plan(rng, scale) {
      // Late enough that the clients run at full speed when the link is cut.
      const cut = scale === 'full' ? rng.range(2000, 3000) : rng.range(1500, 2200);
      const kill = cut + rng.range(300, 700);
      return {
        workload: vmWorkload(kill + (scale === 'full' ? 4000 : 3000), true, 'output-rule'),
        faults: [
          { atMs: cut, action: { type: 'link', link: 'primary->backup', fault: { blackhole: true } } },
          { atMs: kill, action: { type: 'kill', target: 'primary' } },
        ],
      };
    },
  },
  {
    name: 'break-attempt-fencing',
    system: 'mapreduce',
    summary: 'BREAK THE RULE: the coordinator accepts completions from any attempt (--no-attempt-fencing); event-driven through a fault proxy per worker: hold the reply that hands a map task to one worker until the task\'s lease expired and it was handed to another (hold that reply too), then let the first worker run it: its stale attempt\'s completion is accepted',
    invariants: MR_INVARIANTS,
    expectBroken: ['monitors-zero'],
    recoveryBoundMs: 60_000,
    plan(rng, scale) {
      // A 3 s lease: the task handed to the held worker goes to another one 3 s later.
      const workload: MapReduceWorkload = { ...mrWorkload(scale, 4), files: scale === 'full' ? 16 : 8, taskTimeoutMs: 3000, breakRule: 'attempt-fencing', proxyWorkers: true };
      const first = rng.range(0, workload.workers - 1);
      const link = `worker-${first}->coordinator`;
      const tap = (t: Omit<TapAction, 'type'>): ScheduledFault => ({ atMs: 0, action: { type: 'tap', ...t } });
      return {
        workload,
        faults: [
          tap({ link, request: '/poll', reply: '"taskId":"(?<taskId>map-\\d+)"', effect: 'hold', means: `worker-${first} is handed a map task` }),
          tap({ link: 'workers->coordinator', request: '/poll', reply: '"taskId":"{{taskId}}"', effect: 'hold', means: 'that task is handed out again (its lease expired)' }),
          tap({ link, request: '/complete', reply: '"accepted"', effect: 'observe', wait: false, id: 'stale-reported', means: `worker-${first}'s report of the stale attempt is answered` }),
          { atMs: 0, action: { type: 'release', link } },
          { atMs: 0, action: { type: 'await', id: 'stale-reported' } },
          { atMs: 0, action: { type: 'release', link: 'workers->coordinator' } },
        ],
      };
    },
  },
  {
    name: 'break-test-and-set',
    system: 'vm',
    summary: 'BREAK THE RULE: the backup goes live without asking storage for test-and-set (--no-test-and-set); cut the log channel (blackhole, fault proxy) past failure suspicion, heal it later: the primary wins test-and-set for the same epoch the backup took for itself, and two primaries serve',
    invariants: VM_INVARIANTS,
    expectBroken: ['one-live-primary-per-epoch'],
    // Consequences of two live primaries the drill does not count against it: clients see two histories.
    mayBreak: ['no-ack-lost-or-doubled', 'linearizable', 'monitors-zero'],
    recoveryBoundMs: 10_000,
    plan(rng, scale) {
      const at = scale === 'full' ? rng.range(1500, 2500) : rng.range(800, 1500);
      // Past the suspicion window (50 ticks of 20 ms) and the go-live on both sides.
      const cut = scale === 'full' ? rng.range(2500, 4000) : rng.range(2000, 2500);
      return partition(at, cut, 2000, 'test-and-set');
    },
  },
  {
    name: 'break-dedup',
    system: 'vm',
    summary: 'BREAK THE RULE: the kv guest applies retried requests again (--no-dedup on both nodes); event-driven through a fault proxy in front of each node: when the reply to an incr is in flight to its client, reset the connection: the client retries the same request, which is applied a second time',
    invariants: VM_INVARIANTS,
    expectBroken: ['no-ack-lost-or-doubled', 'linearizable'],
    recoveryBoundMs: 10_000,
    plan(rng, scale) {
      const skip = rng.range(0, scale === 'full' ? 200 : 30);
      return {
        // No failover is needed here: a 5 s suspicion window keeps a loaded machine's pauses from causing one.
        workload: { ...vmWorkload(scale === 'full' ? 4000 : 1000, false, 'dedup'), suspectTicks: 250, proxyClients: true },
        faults: [
          { atMs: 0, action: { type: 'tap', link: 'clients->primary', request: '"op":"incr"', effect: 'reset', ...(skip ? { skip } : {}), means: `the reply to incr number ${skip + 1} is in flight` } },
        ],
      };
    },
  },
];

function sortFaults(faults: ScheduledFault[]): ScheduledFault[] {
  // Stable: equal times keep their planned order.
  return faults.map((f, i) => ({ f, i })).sort((x, y) => x.f.atMs - y.f.atMs || x.i - y.i).map((x) => x.f);
}

export function findDrill(name: string): DrillDefinition {
  const d = CATALOG.find((x) => x.name === name);
  if (!d) throw ERR_UNKNOWN_DRILL(name, CATALOG.map((x) => x.name).join(', '));
  return d;
}

/** Parses a seed given as text (decimal). */
export function parseSeed(text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffffffff) throw ERR_BAD_SEED(JSON.stringify(text));
  return Number(text);
}

/** The exact schedule of drill `name` for `seed`. Pure: the same arguments give the same schedule. */
export function buildSchedule(name: string, seed: number, scale: DrillScale = 'full'): Schedule {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw ERR_BAD_SEED(String(seed));
  const d = findDrill(name);
  const { workload, faults } = d.plan(createDrillRng(seed), scale);
  return {
    version: SCHEDULE_VERSION, drill: d.name, seed, scale, workload, faults, invariants: [...d.invariants], recoveryBoundMs: d.recoveryBoundMs,
    ...(d.expectBroken ? { expectBroken: [...d.expectBroken] } : {}),
    ...(d.mayBreak ? { mayBreak: [...d.mayBreak] } : {}),
  };
}

/**
 * The control of a break-the-rule drill: the same faults at the same times with the rule ON,
 * where every invariant must hold. Shows that the anomaly comes from the missing rule, not
 * from the faults. Throws for a drill that breaks no rule.
 */
export function controlSchedule(s: Schedule): Schedule {
  if (!s.workload.breakRule || !s.expectBroken) throw ERR_NO_CONTROL(s.drill);
  const { breakRule: _rule, ...workload } = s.workload;
  const { expectBroken: _e, mayBreak: _m, ...rest } = s;
  return { ...rest, workload, control: true };
}
