/**
 * What a drill does, as data: the faults at their times (ms from the drill's
 * start), the workload and the invariants. Built from a seed by a pure
 * function (see catalog.ts), carried out by a shell (apps/drills), stored in
 * the report so that a replay carries out exactly the same faults.
 */

/** A process the drill started: `worker-<i>`, `coordinator`, `storage`, or a VM role
 * (`primary`, `backup`) that the shell resolves to the node holding it when the fault fires. */
export type ProcessTarget = string;

/** A link the drill put a fault proxy on, named `<from>-><to>`, e.g. `primary->backup`. */
export type LinkName = string;

/** The faults a link can have at once; `{}` heals it. */
export interface LinkFault {
  /** Accept and hold connections, forward nothing in either direction (a partition). */
  blackhole?: boolean;
  /** Reset every open connection (RST) and every new one. */
  reset?: boolean;
  /** Extra latency per chunk, each direction. */
  delayMs?: number;
  /** Bandwidth limit per direction per connection. */
  bytesPerSec?: number;
}

/**
 * A fault triggered by an event instead of a time: the fault proxy on `link` watches each
 * request and its reply, and the first reply matching (`request`, `reply`: regular
 * expressions; `{{name}}` is replaced by what an earlier tap's named group `name` captured,
 * escaped) gets `effect`: held until a `release` of the link, the connection reset (the
 * reply is lost), or only observed. Named groups of the match become variables for later
 * taps. With `wait` (the default) the schedule goes on only once the tap fired; without
 * it the tap is armed and an `await` of its `id` waits for it later.
 */
export interface TapAction {
  type: 'tap';
  link: LinkName;
  request?: string;
  reply?: string;
  effect: 'hold' | 'reset' | 'observe';
  /** Fire on the (skip + 1)-th matching reply. */
  skip?: number;
  /** false: arm it and go on (see `await`). Default true. */
  wait?: boolean;
  id?: string;
  /** What the tap stands for, for the timeline: e.g. "the first reply to an incr is in flight". */
  means: string;
}

export type FaultAction =
  | { type: 'kill'; target: ProcessTarget }
  | { type: 'stop'; target: ProcessTarget }
  | { type: 'cont'; target: ProcessTarget }
  | { type: 'start'; target: ProcessTarget }
  | { type: 'link'; link: LinkName; fault: LinkFault }
  | TapAction
  /** Waits until the tap armed with this id fired. */
  | { type: 'await'; id: string }
  /** Lets the replies held by taps on the link go on. */
  | { type: 'release'; link: LinkName };

export interface ScheduledFault {
  /**
   * Milliseconds after the workload started: the fault fires then, or, when the fault before
   * it (a tap, an await) finished later, at once after it. Event-driven drills use 0.
   */
  atMs: number;
  action: FaultAction;
}

export type DrillScale = 'full' | 'short';

export interface MapReduceWorkload {
  system: 'mapreduce';
  app: 'wc';
  /** Input files, words per file (a seeded corpus). */
  files: number;
  wordsPerFile: number;
  reduces: number;
  /** Workers kept running (a worker that exits while the job runs is replaced). */
  workers: number;
  taskTimeoutMs: number;
  /** The coordinator's --heartbeat-timeout (default: the coordinator's, 5 s). */
  heartbeatTimeoutMs?: number;
  /** A rule the drill switches off on purpose (break-the-rule drills): attempt-fencing (the coordinator accepts stale attempts' completions). */
  breakRule?: 'attempt-fencing';
  /** Put a fault proxy between each worker and the coordinator (links `worker-<i>->coordinator`; `workers->coordinator`: all of them). */
  proxyWorkers?: boolean;
}

export interface VmWorkload {
  system: 'vm';
  /** Concurrent clients, each sending one request at a time. */
  clients: number;
  /** Clients stop sending new requests after this long (ms from the start). */
  durationMs: number;
  /** Ticks of silence (20 ms each) before a node suspects its peer. */
  suspectTicks: number;
  /** Put a fault proxy on the primary -> backup log channel. */
  proxyLogChannel: boolean;
  /** Clients reach each node through a fault proxy (links `clients-><node>`, `clients->primary`: the primary's when the fault fires). */
  proxyClients?: boolean;
  /**
   * A rule the drill switches off on purpose to show what it prevents (break-the-rule drills):
   * output-rule (answers before the backup's ack), test-and-set (the backup goes live without
   * arbitration), dedup (the kv guest applies retried requests again).
   */
  breakRule?: 'output-rule' | 'test-and-set' | 'dedup';
}

export type Workload = MapReduceWorkload | VmWorkload;

export interface Schedule {
  /** Bumped when the meaning of a schedule changes; a replay refuses another version. */
  version: 1;
  drill: string;
  seed: number;
  scale: DrillScale;
  workload: Workload;
  faults: ScheduledFault[];
  /** Invariant ids (see INVARIANTS) the shell checks. */
  invariants: string[];
  /** The service must be back (failover done, job done) within this many ms of the fault. */
  recoveryBoundMs: number;
  /**
   * Break-the-rule drills: the drill passes when at least one of these invariants is broken
   * (the anomaly the rule prevents happened and was caught); the others must still hold.
   */
  expectBroken?: string[];
  /** Break-the-rule drills: invariants that may break as well, as consequences of the anomaly. */
  mayBreak?: string[];
  /** The control run of a break-the-rule drill: the same faults with the rule on (see controlSchedule). */
  control?: true;
}

export const SCHEDULE_VERSION = 1 as const;

/** One line per fault, for logs and reports: `+1234ms kill worker-2`. */
export function describeFault(f: ScheduledFault): string {
  const a = f.action;
  const what =
    a.type === 'link' ? `link ${a.link} ${describeLinkFault(a.fault)}`
    : a.type === 'tap' ? `on ${a.means} (link ${a.link}${a.request ? `, request matching ${JSON.stringify(a.request)}` : ''}${a.reply ? `, reply matching ${JSON.stringify(a.reply)}` : ''}${a.skip ? `, the ${a.skip + 1}th match` : ''}): ${a.effect === 'hold' ? 'hold the reply' : a.effect === 'reset' ? 'reset the connection' : 'note it'}${a.wait === false ? ` (armed as ${a.id})` : ''}`
    : a.type === 'await' ? `await ${a.id}`
    : a.type === 'release' ? `release link ${a.link}`
    : `${a.type} ${a.target}`;
  return `+${f.atMs}ms ${what}`;
}

export function describeLinkFault(f: LinkFault): string {
  const parts: string[] = [];
  if (f.blackhole) parts.push('blackhole');
  if (f.reset) parts.push('reset');
  if (f.delayMs) parts.push(`delay ${f.delayMs}ms`);
  if (f.bytesPerSec) parts.push(`limit ${f.bytesPerSec}B/s`);
  return parts.length ? parts.join(', ') : 'healed';
}
