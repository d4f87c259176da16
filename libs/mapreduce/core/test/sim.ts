/**
 * Seeded simulation of the scheduler core with simulated workers and faults:
 * workers that crash (and come back as new processes), stall past their
 * lease, run slow, send duplicate completions, and a coordinator that
 * restarts from its journal (dropping every request in flight). Messages
 * take 0-2 ticks each way. Everything is driven by one seeded Rng, so a seed
 * replays exactly.
 */
import { createHash } from 'node:crypto';
import { createRng, SimClock, type Rng } from '@mr/sim';
import type { MapSource, PollReply, TaskRef } from '@mr/mapreduce-protocol';
import { Scheduler, walkImage, type PersistRecord, type ReplyBody, type SchedulerConfig, type SchedulerEvent, type SchedulerInput } from '../src/index.ts';
import { testJobId } from './harness.ts';

export interface SimOptions {
  seed: number;
  workers: number;
  jobs: number;
  /** Ticks during which faults happen; after that the world heals. */
  faultTicks: number;
  /** Ticks allowed after healing for every job to finish. */
  livenessTicks: number;
  faults: boolean;
  /** Backup attempts for stragglers (default on; the job-count rule holds only without them). */
  backups?: boolean;
  /**
   * A standby scheduler fed every input the active gets (the standby
   * coordinator's replication), started and restarted by state transfer
   * (Scheduler.fromImage of a structured clone of image()) at seeded points:
   * every step's effects must equal the active's, and so must the images.
   */
  standby?: boolean;
  /**
   * Worker-served shuffle: map output lives in its worker's process (gone
   * with a crash, unreachable while it stalls); reduces fetch each source and
   * report fetch failures. reexecute: false switches the re-execution rule off.
   */
  shuffle?: boolean;
  reexecute?: boolean;
}

export interface SimResult {
  seed: number;
  problems: string[];
  ticks: number;
  restarts: number;
  crashes: number;
  stalls: number;
  duplicates: number;
  /** Map executions started per job/task. */
  mapRuns: Map<string, number>;
  jobs: number;
  /** Backup attempts launched, and how their races ended. */
  backups: Record<string, number>;
  /** State transfers to the standby, and steps it followed. */
  transfers: number;
  followed: number;
  /** Worker shuffle: map outputs declared lost, fetch failures reported, partitions fetched. */
  lostOutputs: number;
  fetchFailures: number;
  fetches: number;
}

type Req = Extract<SchedulerInput, { requestId: string }>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

interface SimWorker {
  n: number;
  /** Changes on every crash/restart: replies to an older incarnation are lost. */
  incarnation: number;
  alive: boolean;
  id: string | undefined;
  pending: boolean;
  task:
    | {
        jobId: string; taskId: string; attempt: number; kind: 'map' | 'reduce'; index: number; dir: string; reduces: number; doneAt: number;
        serve: boolean; sources: MapSource[]; fetched: Set<number>; waitUntil: number;
      }
    | undefined;
  /** Served map outputs this incarnation keeps (`job/map-m#attempt`): a crash loses them. */
  store: Set<string>;
  stalledUntil: number;
  exited: boolean;
}

const config: Partial<SchedulerConfig> = {
  tickMs: 100,
  leaseTicks: 40,
  heartbeatTimeoutTicks: 12,
  heartbeatIntervalTicks: 3,
  pollTimeoutTicks: 30,
  maxAttempts: 500,
  exitWhenDone: false,
  workRoot: '/data/jobs',
};

/** The state hash a standby coordinator compares (walkImage into sha256). */
export function imageHash(s: Scheduler): string {
  const h = createHash('sha256');
  walkImage(s.image(), (t) => h.update(t));
  return h.digest('hex');
}

export function simulate(o: SimOptions): SimResult {
  const rng: Rng = createRng(o.seed);
  const clock = new SimClock();
  const journal: PersistRecord[] = [];
  const problems: string[] = [];
  const result: SimResult = {
    seed: o.seed, problems, ticks: 0, restarts: 0, crashes: 0, stalls: 0, duplicates: 0, mapRuns: new Map(), jobs: 0, backups: {}, transfers: 0, followed: 0,
    lostOutputs: 0, fetchFailures: 0, fetches: 0,
  };
  // The standby's own draws, so a seed's world is the same with and without it.
  const standbyRng = createRng(o.seed ^ 0x5eed);
  let standby: Scheduler | undefined;
  const transfer = (): void => {
    if (!o.standby) return;
    standby = Scheduler.fromImage(structuredClone(core.image()));
    result.transfers++;
  };
  const cfg: Partial<SchedulerConfig> = { ...config, backupTasks: o.backups ?? true, reexecuteLostMaps: o.reexecute ?? true };
  /** Lazy records not yet written: they go into the journal before the next durable batch (or on a tick); a restart loses them. */
  let lazy: PersistRecord[] = [];
  let core = new Scheduler(cfg);
  let epoch = 0;
  let reqSeq = 0;
  const waiting = new Map<string, { w: SimWorker; incarnation: number; on: (b: ReplyBody) => void }>();
  let faultsOn = o.faults;
  let tick = 0;

  // ---- checker state, built from the durable records and the replies
  const commits = new Map<string, number>();
  const winners = new Map<string, string[]>();
  const jobShape = new Map<string, { maps: number; reduces: number }>();
  const finished = new Map<string, string>();

  const problem = (msg: string): void => {
    if (problems.length < 20) problems.push(`tick ${tick}: ${msg}`);
  };

  /** Served map outputs ever committed: `job/map-m#attempt` -> location. */
  const served = new Map<string, string>();
  const lostSeen = new Set<string>();
  const checkPersist = (p: PersistRecord): void => {
    if (p.type === 'job-accepted') jobShape.set(p.jobId, { maps: p.job.inputs.length, reduces: p.job.reduces });
    if (p.type === 'task-committed') {
      const k = `${p.jobId}/${p.taskId}`;
      commits.set(k, (commits.get(k) ?? 0) + 1);
      if (commits.get(k)! > 1) problem(`${k} committed twice`);
      winners.set(k, p.files);
      if (p.location !== undefined) served.set(`${k}#${p.attempt}`, p.location);
    }
    // A lost map output: the map may commit once more.
    if (p.type === 'map-output-lost') {
      const k = `${p.jobId}/${p.taskId}`;
      lostSeen.add(k);
      commits.set(k, (commits.get(k) ?? 0) - 1);
      winners.delete(k);
    }
    if (p.type === 'job-finished') {
      if (finished.has(p.jobId)) problem(`${p.jobId} finished twice`);
      finished.set(p.jobId, p.state);
    }
  };

  const checkAssignment = (r: PollReply): void => {
    if (r.type !== 'reduce') return;
    const shape = jobShape.get(r.jobId)!;
    const expected: string[] = [];
    for (let m = 0; m < shape.maps; m++) {
      const files = winners.get(`${r.jobId}/map-${m}`);
      if (!files) {
        problem(`reduce ${r.jobId}/${r.taskId} handed out before map-${m} committed`);
        return;
      }
      expected.push(files[r.index]!);
    }
    if (r.sources) {
      // Worker shuffle: one source per map, each the current winner's location.
      for (let m = 0; m < shape.maps; m++) {
        const s = r.sources.find((x) => x.map === m);
        if (!s || served.get(`${r.jobId}/map-${m}#${s.attempt}`) !== s.location) problem(`reduce ${r.jobId}/${r.taskId}: source of map-${m} ${JSON.stringify(s)} is not a committed output`);
      }
      return;
    }
    if (JSON.stringify(expected) !== JSON.stringify(r.inputs)) problem(`reduce ${r.jobId}/${r.taskId} inputs ${r.inputs} are not the winners' ${expected}`);
  };

  const drive = (input: SchedulerInput): void => {
    core.step(input);
    const fx = core.ready();
    if (standby) {
      standby.step(input);
      const sfx = standby.ready();
      if (JSON.stringify(sfx) !== JSON.stringify(fx)) problem(`standby diverged on ${input.type}: ${JSON.stringify(sfx).slice(0, 300)} vs ${JSON.stringify(fx).slice(0, 300)}`);
      standby.advance();
      result.followed++;
    }
    // Durable first: the journal gets the records before any reply leaves (lazy ones written before go with them).
    if (fx.persist.length) {
      journal.push(...lazy);
      lazy = [];
    }
    for (const p of fx.persist) {
      journal.push(p);
      checkPersist(p);
    }
    for (const p of fx.persistLazy) {
      lazy.push(p);
      checkPersist(p);
    }
    for (const r of fx.replies) {
      const wt = waiting.get(r.requestId);
      if (!wt) continue;
      waiting.delete(r.requestId);
      if (r.body.kind === 'poll') checkAssignment(r.body.reply);
      const body = r.body;
      clock.schedule(rng.int(3), () => {
        if (wt.w.alive && wt.w.incarnation === wt.incarnation) wt.on(body);
      });
    }
    for (const e of fx.events) onEvent(e);
    const publish = [...fx.publish];
    core.advance();
    // The shell renames the accepted reduce's output, then tells the core.
    for (const p of publish) drive({ type: 'published', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt });
  };

  const onEvent = (e: SchedulerEvent): void => {
    if (e.type === 'backup') result.backups[e.outcome] = (result.backups[e.outcome] ?? 0) + 1;
    if (e.type === 'map-output-lost') result.lostOutputs++;
    if (e.type === 'task-assigned' && e.phase === 'map') {
      const k = `${e.jobId}/${e.taskId}`;
      result.mapRuns.set(k, (result.mapRuns.get(k) ?? 0) + 1);
    }
  };

  /** A worker sends a request; it may be lost in a coordinator restart (the worker sees an error). */
  const send = (w: SimWorker, input: DistributiveOmit<Req, 'requestId'>, on: (b: ReplyBody) => void, onError: () => void): void => {
    const inc = w.incarnation;
    const sentEpoch = epoch;
    clock.schedule(rng.int(3), () => {
      if (!w.alive || w.incarnation !== inc) return;
      if (epoch !== sentEpoch) return void clock.schedule(1 + rng.int(3), onError);
      const requestId = `r${++reqSeq}`;
      waiting.set(requestId, { w, incarnation: inc, on });
      drive({ ...input, requestId } as SchedulerInput);
    });
  };

  const workers: SimWorker[] = [];
  const cred = (w: SimWorker): string => `secret-${w.n}-${w.incarnation}`;
  /** A coordinator that does not know us (restarted, declared us lost): register again, as the real worker does. */
  const forgotten = (w: SimWorker, b: ReplyBody): void => {
    if (b.kind === 'refused' && b.code === 'unknown-worker') w.id = undefined;
    if (b.kind === 'refused' && b.code === 'worker-credential') problem(`worker ${w.n} refused with its own credential`);
  };
  const act = (w: SimWorker): void => {
    if (!w.alive || w.exited || w.pending || tick < w.stalledUntil) return;
    const retry = (): void => {
      w.pending = false;
    };
    if (w.id === undefined) {
      w.pending = true;
      send(w, { type: 'register', worker: { name: `sim${w.n}`, pid: w.n, host: 'sim', slots: 1 }, credential: cred(w) }, (b) => {
        w.pending = false;
        if (b.kind === 'registered') w.id = b.workerId;
      }, retry);
      return;
    }
    const t = w.task;
    if (t) {
      if (tick < t.doneAt || tick < t.waitUntil) return;
      // A served reduce fetches each map's partition from the worker that keeps it; a failure is reported.
      const src = t.sources.find((s) => !t.fetched.has(s.map));
      if (src) {
        const [n, inc] = src.location.slice('sim://'.length).split('/').map(Number);
        const holder = workers[n!]!;
        if (holder.alive && holder.incarnation === inc && tick >= holder.stalledUntil && holder.store.has(`${t.jobId}/map-${src.map}#${src.attempt}`)) {
          if (served.get(`${t.jobId}/map-${src.map}#${src.attempt}`) !== src.location) problem(`${t.jobId}/${t.taskId} fetched map-${src.map}#${src.attempt} that was never committed at ${src.location}`);
          t.fetched.add(src.map);
          result.fetches++;
          return;
        }
        result.fetchFailures++;
        w.pending = true;
        const ask = { type: 'fetch-failed' as const, workerId: w.id, credential: cred(w), jobId: t.jobId, taskId: t.taskId, attempt: t.attempt, map: src.map, mapAttempt: src.attempt, error: 'unreachable' };
        send(w, ask, (b) => {
          w.pending = false;
          forgotten(w, b);
          if (b.kind !== 'fetch' || w.task !== t) return;
          if (b.reply.action === 'abandon') w.task = undefined;
          else {
            t.sources = t.sources.map((s) => (s.map === src.map ? b.reply.source! : s));
            t.waitUntil = tick + 2;
          }
        }, retry);
        return;
      }
      const files = t.kind === 'map' ? Array.from({ length: t.reduces }, (_, r) => `${t.dir}/mr-${t.index}-${r}`) : [`${t.dir}/mr-out-${t.index}`];
      // A served map's files stay in this process, served at its location.
      if (t.serve) w.store.add(`${t.jobId}/${t.taskId}#${t.attempt}`);
      const complete = {
        type: 'complete' as const, workerId: w.id, credential: cred(w), jobId: t.jobId, taskId: t.taskId, attempt: t.attempt, durationMs: 1, files,
        ...(t.serve ? { location: `sim://${w.n}/${w.incarnation}` } : {}),
      };
      w.pending = true;
      send(w, complete, (b) => {
        w.pending = false;
        w.task = undefined;
        forgotten(w, b);
      }, retry);
      if (faultsOn && rng.chance(0.1)) {
        result.duplicates++;
        send(w, complete, () => {}, () => {});
      }
      return;
    }
    w.pending = true;
    send(w, { type: 'poll', workerId: w.id, credential: cred(w) }, (b) => {
      w.pending = false;
      forgotten(w, b);
      if (b.kind !== 'poll') return;
      const r = b.reply;
      if (r.type === 'exit') w.exited = true;
      if (r.type !== 'map' && r.type !== 'reduce') return;
      const slow = faultsOn && rng.chance(0.1);
      const dur = slow ? rng.range(20, 60) : rng.range(1, 12);
      w.task = {
        jobId: r.jobId, taskId: r.taskId, attempt: r.attempt, kind: r.type, index: r.index, dir: r.outputDir, reduces: r.reduces, doneAt: tick + dur,
        serve: r.type === 'map' && r.serve === true, sources: r.type === 'reduce' ? [...(r.sources ?? [])] : [], fetched: new Set(), waitUntil: 0,
      };
    }, retry);
  };

  const heartbeat = (w: SimWorker): void => {
    if (!w.alive || w.id === undefined || !w.task || tick < w.stalledUntil) return;
    const ref: TaskRef = { jobId: w.task.jobId, taskId: w.task.taskId, attempt: w.task.attempt };
    send(w, { type: 'heartbeat', workerId: w.id, credential: cred(w), tasks: [ref] }, (b) => {
      forgotten(w, b);
      if (b.kind === 'heartbeat' && b.reply.abandon.length && w.task && w.task.attempt === ref.attempt && w.task.taskId === ref.taskId && w.task.jobId === ref.jobId) {
        w.task = undefined;
      }
    }, () => {});
  };

  for (let i = 0; i < o.workers; i++) {
    workers.push({ n: i, incarnation: 0, alive: true, id: undefined, pending: false, task: undefined, stalledUntil: 0, exited: false, store: new Set() });
  }

  // Jobs: some at once, the rest at random times during the fault phase.
  const submitAt = Array.from({ length: o.jobs }, (_, i) => (i === 0 ? 0 : rng.int(Math.max(1, o.faultTicks))));
  const submit = (): void => {
    const maps = rng.range(1, 6);
    const reduces = rng.range(1, 4);
    drive({
      type: 'submit', requestId: `s${++reqSeq}`, jobId: testJobId(reqSeq),
      job: { app: 'wc', inputs: Array.from({ length: maps }, (_, i) => `/in/${i}`), reduces, options: {}, ...(o.shuffle ? { settings: { shuffle: 'worker' as const } } : {}) },
    });
  };

  const total = o.faultTicks + o.livenessTicks;
  for (tick = 0; tick < total; tick++) {
    if (tick === o.faultTicks) {
      faultsOn = false;
      for (const w of workers) {
        w.stalledUntil = Math.min(w.stalledUntil, tick);
        if (!w.alive) {
          w.alive = true;
          w.incarnation++;
          w.id = undefined;
          w.pending = false;
          w.task = undefined;
          w.store = new Set();
        }
      }
    }
    for (let j = 0; j < submitAt.length; j++) if (submitAt[j] === tick) submit();
    if (faultsOn) {
      for (const w of workers) {
        if (!w.alive) continue;
        const roll = rng.next();
        if (roll < 0.01) {
          // Crash: the process is gone; it comes back later as a new process.
          result.crashes++;
          w.alive = false;
          const back = tick + rng.range(5, 30);
          clock.schedule(back - tick, () => {
            w.alive = true;
            w.incarnation++;
            w.id = undefined;
            w.pending = false;
            w.task = undefined;
            w.store = new Set();
          });
        } else if (w.task && roll < 0.02) {
          // Stall: frozen past its lease and the heartbeat timeout, then it wakes up and carries on.
          result.stalls++;
          w.stalledUntil = tick + rng.range(10, 60);
        }
      }
      if (rng.chance(0.004)) {
        // Coordinator restart: rebuilt from its journal; every request in flight is lost.
        result.restarts++;
        epoch++;
        for (const [, wt] of waiting) clock.schedule(1 + rng.int(3), () => {
          if (wt.w.incarnation === wt.incarnation) wt.w.pending = false;
        });
        waiting.clear();
        lazy = [];
        core = Scheduler.restore(cfg, journal);
        const fx = core.ready();
        for (const p of fx.persist) {
          journal.push(p);
          checkPersist(p);
        }
        core.advance();
        standby = undefined;
        for (const p of core.owedPublishes()) drive({ type: 'published', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt });
        transfer();
      }
    }
    if (o.standby && (!standby || standbyRng.chance(0.01))) transfer();
    clock.runUntil(tick);
    // The driver writes pending lazy records when no write is in flight: here, every other tick (no draw from the rng: seeds keep their runs).
    if (tick % 2 === 0) {
      journal.push(...lazy);
      lazy = [];
    }
    drive({ type: 'tick' });
    for (const w of workers) {
      if (tick % config.heartbeatIntervalTicks! === 0) heartbeat(w);
      act(w);
    }
    if (tick > o.faultTicks && core.jobs().length === o.jobs && core.jobs().every((j) => j.state === 'succeeded')) break;
  }
  result.ticks = tick;
  result.jobs = core.jobs().length;
  if (standby && JSON.stringify(standby.jobs()) !== JSON.stringify(core.jobs())) problem('the standby ends with other jobs than the active');
  if (standby && imageHash(standby) !== imageHash(core)) problem('the standby ends in another state than the active');

  // Liveness and exactly-once: every job finished with success, every task committed exactly once.
  const jobs = core.jobs();
  if (jobs.length !== o.jobs) problem(`${jobs.length} jobs known, ${o.jobs} submitted`);
  for (const j of jobs) {
    if (j.state !== 'succeeded') problem(`${j.id} is ${j.state} after healing (${JSON.stringify(j.tasks)})${j.error ? `: ${j.error}` : ''}`);
    const shape = jobShape.get(j.id)!;
    // A map whose output was lost need not commit again when every reduce finished first (the job succeeds).
    for (let m = 0; m < shape.maps; m++) {
      const k = `${j.id}/map-${m}`;
      if (commits.get(k) !== 1 && !(commits.get(k) === 0 && lostSeen.has(k))) problem(`${k} committed ${commits.get(k) ?? 0} times`);
    }
    for (let r = 0; r < shape.reduces; r++) if (commits.get(`${j.id}/reduce-${r}`) !== 1) problem(`${j.id}/reduce-${r} committed ${commits.get(`${j.id}/reduce-${r}`) ?? 0} times`);
    if (finished.get(j.id) !== 'succeeded') problem(`${j.id} has no durable succeeded record`);
  }
  return result;
}
