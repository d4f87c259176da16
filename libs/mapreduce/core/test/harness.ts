/**
 * Transcript harness for the scheduler: one handler per command, effects
 * printed one per line.
 *
 *   config lease=5 hb=3 poll=4 max=3 exit=true    new scheduler (ticks); retain= recovery= progress= jobs= inter= queued= limits;
 *                                                backup=true slowness=2 bmin=3 bdone=0.5: backup tasks (off by default); skipafter=2
 *   submit maps=2 reduces=1 [id=ID] [app=wc] [name=x] [key=K fp=F] [backups=false] [maxbackups=N] [skip=true] [maxskip=N]
 *                                                id: the job id the shell offers (default j<accepted so far + 1>)
 *   register [name=x]                            register a worker (its credential: cred<requestId>)
 *   poll w1 [free=N] [cred=x]                    long-poll (maybe parked); free > 1: a batch; cred overrides the worker's credential
 *   complete w1 j1 map-0 attempt=1 [files=a,b] [counters=k:1,l:2]
 *   fail w1 j1 map-0 attempt=1 [retryable=false] [error=boom] [record=map:0@40+8]   (see parseRecord)
 *   heartbeat w1 j1/map-0/1[@progress][#record] ...
 *   tick [n]  |  cancel j1  |  shutdown  |  gone <requestId>
 *   restart [lose-lazy=true]                     rebuild from the persisted records (lose-lazy: without the lazy ones after the last durable batch), then carry out owed publishes
 *   hold-publishes                               from now on, publishes are printed but not carried out (a crash before the rename)
 *   compact                                      the journal becomes the core's snapshot()
 *   lookup j1 j2                                 kept | retired | unknown
 *   jobs  |  workers  |  backups j1  |  skipped j1   views (backups: the job's decision log; skipped: its bad records)
 *   reexecutions j1                              the job's maps run again after their output was lost
 * Worker shuffle (config shuffle=worker fetchrerun=N reexec=false, or submit shuffle=worker):
 *   complete ... [location=URL]                  a served map's location (default http://<worker>/)
 *   fetch-failed w3 j1 reduce-0 attempt=2 map=1 mattempt=1 [error=...]
 *   held w1 j1 j2                                the jobs whose intermediates w1 keeps: which are over
 */
import type { PollReply, RecordRef } from '@mr/mapreduce-protocol';
import type { TranscriptCommand } from '@mr/sim';
import { Scheduler, type Effects, type PersistRecord, type ReplyBody, type SchedulerConfig, type SchedulerInput } from '../src/index.ts';

export function formatBody(b: ReplyBody): string {
  switch (b.kind) {
    case 'poll':
      return formatPoll(b.reply);
    case 'ack':
      return b.ack.accepted ? 'ack accepted' : `ack refused ${b.ack.reason}`;
    case 'heartbeat':
      return `heartbeat abandon=[${b.reply.abandon.map((r) => `${r.jobId}/${r.taskId}/${r.attempt}`).join(' ')}]`;
    case 'fetch':
      return `fetch ${b.reply.action}${b.reply.source ? ` m${b.reply.source.map}#${b.reply.source.attempt}@${b.reply.source.location}` : ''}`;
    case 'drop':
      return `drop [${b.jobs.join(' ')}]`;
    case 'registered':
      return `registered ${b.workerId}`;
    case 'created':
      return `created ${b.jobId} ${b.state}${b.existing ? ' (existing)' : ''}`;
    case 'cancelled':
      return `cancelled ${b.jobId} ${b.state}`;
    case 'refused':
      return `refused ${b.code}: ${b.message}`;
  }
}

export function formatPoll(r: PollReply): string {
  switch (r.type) {
    case 'batch':
      return `batch [${r.tasks.map(formatPoll).join(' | ')}]`;
    case 'wait':
      return 'wait';
    case 'exit':
      return `exit (${r.reason})`;
    case 'map':
      return `map ${r.jobId}/${r.taskId} attempt=${r.attempt} input=${r.input} dir=${r.outputDir} lease=${r.leaseMs}ms${formatSplit(r.split)}${r.serve ? ' serve' : ''}${formatSkip(r.skip)}`;
    case 'reduce':
      if (r.sources) return `reduce ${r.jobId}/${r.taskId} attempt=${r.attempt} sources=[${r.sources.map((s) => `m${s.map}#${s.attempt}@${s.location}`).join(' ')}] dir=${r.outputDir}${formatSkip(r.skip)}`;
      return `reduce ${r.jobId}/${r.taskId} attempt=${r.attempt} inputs=[${r.inputs.join(' ')}] dir=${r.outputDir}${formatSkip(r.skip)}`;
  }
}

/** A job that skips bad records: ` skip=chunks|per-record[records...]`. */
function formatSkip(skip: Extract<PollReply, { type: 'map' }>['skip']): string {
  if (!skip) return '';
  return ` skip=${skip.perRecord ? 'per-record' : 'chunks'}${skip.records.length ? `[${skip.records.map(formatRecord).join(' ')}]` : ''}`;
}

/** The split, when it is more than one whole input: ` split=[path@start-end name=... ...]`. */
function formatSplit(split: Extract<PollReply, { type: 'map' }>['split']): string {
  if (!split || (split.length === 1 && split[0]!.start === 0 && split[0]!.end === undefined && split[0]!.name === split[0]!.path)) return '';
  return ` split=[${split.map((p) => `#${p.index}:${p.path}@${p.start}-${p.end ?? ''}${p.name !== p.path ? ` name=${p.name}` : ''}`).join(' ')}]`;
}

export function formatRecord(r: RecordRef): string {
  return r.phase === 'map' ? `input=${r.input}@${r.offset}+${r.bytes}${r.records !== 1 ? `x${r.records}` : ''}` : `group=${r.group}(${r.key})`;
}

/** 'map:0@120+10' (input 0, offset 120, 10 bytes, one record; 'x5': five) or 'reduce:3:key' (group 3). */
export function parseRecord(s: string): RecordRef {
  const m = /^map:(\d+)@(\d+)\+(\d+)(?:x(\d+))?$/.exec(s);
  if (m) return { phase: 'map', input: Number(m[1]), offset: Number(m[2]), bytes: Number(m[3]), records: Number(m[4] ?? 1) };
  const r = /^reduce:(\d+):(.*)$/.exec(s);
  if (r) return { phase: 'reduce', group: Number(r[1]), key: r[2]! };
  throw new Error(`bad record ${s}`);
}

export function formatPersist(p: PersistRecord): string {
  switch (p.type) {
    case 'boot':
      return `persist boot ${p.boot}`;
    case 'job-accepted':
      return `persist job-accepted ${p.jobId} app=${p.job.app} ${p.job.splits ? `inputs=${p.job.inputs.length} splits=${p.job.splits.length}` : `maps=${p.job.inputs.length}`} reduces=${p.job.reduces}`;
    case 'job-started':
      return `persist job-started ${p.jobId}`;
    case 'task-committed':
      return `persist task-committed ${p.jobId}/${p.taskId} attempt=${p.attempt} files=${p.files.length}${p.location !== undefined ? ` on=${p.workerId} at=${p.location}` : ''}`;
    case 'map-output-lost':
      return `persist map-output-lost ${p.jobId}/${p.taskId} attempt=${p.attempt} worker=${p.workerId} waiting=${p.reducesWaiting} (${p.reason})`;
    case 'fetch-failed':
      return `persist fetch-failed ${p.jobId}/${p.taskId} attempt=${p.attempt}`;
    case 'job-finished':
      return `persist job-finished ${p.jobId} ${p.state}${p.error ? ` (${p.error})` : ''}`;
    case 'snapshot':
      return (
        `persist snapshot boot=${p.boot} jobSeq=${p.jobSeq} retired=${p.retired.succeeded}/${p.retired.failed}/${p.retired.cancelled}` +
        (p.lastId !== undefined ? ` last=${p.lastId}` : '') +
        (p.retiredThrough !== undefined ? ` retiredThrough=${p.retiredThrough}` : '')
      );
    case 'job-summary':
      return `persist job-summary ${p.jobId} ${p.summary.state}`;
    case 'job-image':
      return `persist job-image ${p.jobId} ${p.image.state} committed=${p.image.committed.map((c) => c.taskId).join(',')}`;
    case 'output-published':
      return `persist output-published ${p.jobId}/${p.taskId} attempt=${p.attempt}`;
    case 'worker-registered':
      return `persist worker-registered ${p.workerId}`;
    case 'task-leased':
      return `persist task-leased ${p.jobId}/${p.taskId} attempt=${p.attempt} worker=${p.workerId}`;
    case 'task-released':
      return `persist task-released ${p.jobId}/${p.taskId} attempt=${p.attempt}`;
    case 'worker-lost':
      return `persist worker-lost ${p.workerId}`;
    case 'backup-launched':
      return `persist backup-launched ${p.jobId}/${p.taskId} attempt=${p.attempt} worker=${p.workerId} original=${p.decision.original.attempt}@${p.decision.original.workerId}`;
    case 'backup-ended':
      return `persist backup-ended ${p.jobId}/${p.taskId} attempt=${p.attempt} ${p.outcome}`;
    case 'record-skipped':
      return `persist record-skipped ${p.jobId}/${p.skipped.taskId} ${formatRecord(p.skipped.record)} failures=${p.skipped.failures}`;
  }
}

export function formatEffects(fx: Effects): string[] {
  const out: string[] = [];
  for (const p of fx.persist) out.push(formatPersist(p));
  // Lazy records (no reply waits for them); a lease record is left out: the assignment it records is printed.
  for (const p of fx.persistLazy) if (p.type !== 'task-leased') out.push(`lazy ${formatPersist(p).slice('persist '.length)}`);
  for (const p of fx.publish) out.push(`publish ${p.jobId}/${p.taskId} attempt=${p.attempt} ${p.from} -> ${p.to}`);
  for (const r of fx.replies) out.push(`reply ${r.requestId} ${formatBody(r.body)}`);
  for (const e of fx.events) {
    if (e.type === 'job-progress') continue;
    const { type, ...rest } = e;
    if (e.type === 'task-committed') delete (rest as { counters?: unknown }).counters;
    if (e.type === 'job-finished') {
      delete (rest as { workDir?: string }).workDir;
      delete (rest as { output?: string }).output;
    }
    out.push(`event ${type} ${Object.entries(rest).map(([k, v]) => `${k}=${k === 'record' ? formatRecord(v as RecordRef) : v}`).join(' ')}`.trimEnd());
  }
  return out;
}

/** A valid ULID job id made from a counter (deterministic; larger n, newer id). */
export function testJobId(n: number): string {
  return String(n).padStart(26, '0');
}

export class Harness {
  core: Scheduler;
  config: Partial<SchedulerConfig> = { tickMs: 100, leaseTicks: 10, heartbeatTimeoutTicks: 5, heartbeatIntervalTicks: 1, pollTimeoutTicks: 8, recoveryTicks: 0, backupTasks: false };
  journal: PersistRecord[] = [];
  #req = 0;
  /** Map attempt -> its output dir (for default completion files). */
  dirs = new Map<string, { dir: string; index: number; reduces: number; serve: boolean }>();
  /** Worker id -> the credential it registered with. */
  creds = new Map<string, string>();
  #registrations = new Map<string, string>();
  #autoPublish = true;
  /** Journal records a crash keeps: up to the last durable record (lazy records after it may be lost). */
  #durable = 0;

  constructor() {
    this.core = new Scheduler(this.config);
    this.#drain();
  }

  run(input: SchedulerInput): string[] {
    this.core.step(input);
    const fx = this.core.ready();
    this.journal.push(...fx.persist, ...fx.persistLazy);
    // Lazy records become durable with the next durable batch (one file, written in order).
    if (fx.persist.length) this.#durable = this.journal.length - fx.persistLazy.length;
    for (const r of fx.replies) {
      if (r.body.kind === 'registered') this.creds.set(r.body.workerId, this.#registrations.get(r.requestId)!);
      if (r.body.kind !== 'poll') continue;
      const reply = r.body.reply;
      for (const a of reply.type === 'batch' ? reply.tasks : [reply]) {
        if (a.type === 'map') this.dirs.set(`${a.jobId}/${a.taskId}/${a.attempt}`, { dir: a.outputDir, index: a.index, reduces: a.reduces, serve: a.serve === true });
      }
    }
    const out = formatEffects(fx);
    const publish = [...fx.publish];
    this.core.advance();
    if (this.#autoPublish) for (const p of publish) out.push(...this.run({ type: 'published', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt }).map((l) => `  ${l}`));
    return out;
  }

  #cred(workerId: string, kv: Record<string, string>): string {
    return kv['cred'] ?? this.creds.get(workerId) ?? 'none';
  }

  nextRequest(): string {
    return `#${++this.#req}`;
  }

  handle = (cmd: TranscriptCommand): string[] => {
    const kv = cmd.kv;
    switch (cmd.name) {
      case 'config': {
        const num = (k: string, d: number | undefined): number | undefined => (kv[k] !== undefined ? Number(kv[k]) : d);
        this.config = {
          tickMs: 100,
          leaseTicks: num('lease', 10)!,
          heartbeatTimeoutTicks: num('hb', 5)!,
          heartbeatIntervalTicks: 1,
          pollTimeoutTicks: num('poll', 8)!,
          maxAttempts: num('max', 10)!,
          exitWhenDone: kv['exit'] === 'true',
          maxActiveJobs: num('jobs', 1000)!,
          retainJobs: num('retain', 1000)!,
          recoveryTicks: num('recovery', 0)!,
          progressTimeoutTicks: num('progress', 0)!,
          renewLeases: kv['renew'] !== 'false',
          fencing: kv['fencing'] !== 'false',
          maxIntermediatesPerJob: num('inter', 1_000_000)!,
          maxQueuedTasks: num('queued', 1_000_000)!,
          // Backup tasks are off unless a transcript turns them on (backup=true; slowness=, bmin= ticks, bdone= fraction).
          backupTasks: kv['backup'] === 'true',
          backupSlowness: num('slowness', 2)!,
          backupMinTicks: num('bmin', 3)!,
          backupDoneFraction: num('bdone', 0.5)!,
          shuffle: kv['shuffle'] === 'worker' ? 'worker' : 'shared',
          fetchFailuresToRerun: num('fetchrerun', 3)!,
          reexecuteLostMaps: kv['reexec'] !== 'false',
          skipAfterFailures: num('skipafter', 2)!,
        };
        this.core = new Scheduler(this.config);
        this.journal = [];
        this.#req = 0;
        return this.#drain();
      }
      case 'submit': {
        const maps = Number(kv['maps'] ?? 1);
        const reduces = Number(kv['reduces'] ?? 1);
        const n = this.core.jobIds().length + this.core.retired().succeeded + this.core.retired().failed + this.core.retired().cancelled + 1;
        return this.run({
          type: 'submit',
          requestId: this.nextRequest(),
          jobId: kv['id'] ?? `j${n}`,
          ...(kv['key'] !== undefined ? { idempotency: { key: kv['key'], fingerprint: kv['fp'] ?? 'f' } } : {}),
          job: {
            app: kv['app'] ?? 'wc',
            inputs: Array.from({ length: maps }, (_, i) => `/in/${i}`),
            ...(kv['names'] === 'true' ? { names: Array.from({ length: maps }, (_, i) => `in${i}.txt`) } : {}),
            ...(kv['backups'] !== undefined || kv['maxbackups'] !== undefined || kv['shuffle'] !== undefined || kv['skip'] !== undefined
              ? {
                  settings: {
                    ...(kv['backups'] === 'false' ? { backupTasks: false } : {}),
                    ...(kv['maxbackups'] !== undefined ? { maxBackupTasks: Number(kv['maxbackups']) } : {}),
                    ...(kv['shuffle'] === 'worker' || kv['shuffle'] === 'shared' ? { shuffle: kv['shuffle'] } : {}),
                    ...(kv['skip'] === 'true' ? { skipBadRecords: true } : {}),
                    ...(kv['maxskip'] !== undefined ? { maxSkippedRecords: Number(kv['maxskip']) } : {}),
                  },
                }
              : {}),
            // splits=0:0-10,0:10-|1:0-,2:0- : splits separated by |, pieces input:start-end (no end: to EOF).
            ...(kv['splits'] !== undefined
              ? {
                  splits: kv['splits'].split('|').map((sp) =>
                    sp.split(',').map((pc) => {
                      const m = /^(\d+):(\d+)-(\d*)$/.exec(pc)!;
                      return { input: Number(m[1]), start: Number(m[2]), ...(m[3] ? { end: Number(m[3]) } : {}) };
                    }),
                  ),
                }
              : {}),
            reduces,
            output: `/out/${kv['name'] ?? `job${n}`}`,
            workDir: `/data/jobs/j${n}/work`,
            options: {},
            name: kv['name'],
          },
        });
      }
      case 'register': {
        const requestId = this.nextRequest();
        this.#registrations.set(requestId, `cred${requestId}`);
        return this.run({ type: 'register', requestId, worker: { name: kv['name'] ?? 'w', pid: 1, host: 'h', slots: 1 }, credential: `cred${requestId}` });
      }
      case 'hold-publishes':
        this.#autoPublish = false;
        return [];
      case 'poll': {
        const requestId = this.nextRequest();
        const out = this.run({ type: 'poll', requestId, workerId: cmd.args[0]!, credential: this.#cred(cmd.args[0]!, kv), ...(kv['free'] !== undefined ? { free: Number(kv['free']) } : {}) });
        return out.some((l) => l.startsWith(`reply ${requestId} `)) ? out : [`parked ${requestId}`, ...out];
      }
      case 'gone':
        return this.run({ type: 'poll-gone', requestId: cmd.args[0]! });
      case 'complete': {
        const [workerId, jobId, taskId] = cmd.args as [string, string, string];
        const attempt = Number(kv['attempt']);
        let files: string[];
        if (kv['files'] !== undefined) files = kv['files'] === '' ? [] : kv['files'].split(',');
        else {
          const d = this.dirs.get(`${jobId}/${taskId}/${attempt}`);
          files = d ? Array.from({ length: d.reduces }, (_, r) => `${d.dir}/mr-${d.index}-${r}`) : [`/out/mr-out-${taskId.split('-')[1]}`];
        }
        const counters: Record<string, number> = {};
        for (const kvp of (kv['counters'] ?? '').split(',').filter(Boolean)) {
          const [k, v] = kvp.split(':');
          counters[k!] = Number(v);
        }
        const d = this.dirs.get(`${jobId}/${taskId}/${attempt}`);
        const location = kv['location'] ?? (d?.serve ? `http://${workerId}/` : undefined);
        return this.run({
          type: 'complete', requestId: this.nextRequest(), workerId, credential: this.#cred(workerId, kv), jobId, taskId, attempt, durationMs: 5, files, counters,
          ...(location !== undefined && location !== 'none' ? { location } : {}),
        });
      }
      case 'fetch-failed': {
        const [workerId, jobId, taskId] = cmd.args as [string, string, string];
        return this.run({
          type: 'fetch-failed', requestId: this.nextRequest(), workerId, credential: this.#cred(workerId, kv), jobId, taskId,
          attempt: Number(kv['attempt']), map: Number(kv['map']), mapAttempt: Number(kv['mattempt']), error: kv['error'] ?? 'connection refused',
        });
      }
      case 'held': {
        const workerId = cmd.args[0]!;
        return this.run({ type: 'held', requestId: this.nextRequest(), workerId, credential: this.#cred(workerId, kv), jobs: cmd.args.slice(1) });
      }
      case 'fail': {
        const [workerId, jobId, taskId] = cmd.args as [string, string, string];
        return this.run({
          type: 'fail',
          requestId: this.nextRequest(),
          workerId,
          credential: this.#cred(workerId, kv),
          jobId,
          taskId,
          attempt: Number(kv['attempt']),
          error: kv['error'] ?? 'boom',
          retryable: kv['retryable'] !== 'false',
          ...(kv['record'] !== undefined ? { record: parseRecord(kv['record']) } : {}),
        });
      }
      case 'heartbeat': {
        // j1/map-0/1@500: attempt 1 of j1/map-0, progress 500; j1/map-0/1@500#map:0@40+8: on that record (see parseRecord).
        const tasks = cmd.args.slice(1).map((s) => {
          const [head, record] = s.split('#');
          const at = head!.indexOf('@');
          const [ref, progress] = at < 0 ? [head!, undefined] : [head!.slice(0, at), head!.slice(at + 1)];
          const [jobId, taskId, attempt] = ref.split('/');
          return {
            jobId: jobId!, taskId: taskId!, attempt: Number(attempt),
            ...(progress !== undefined ? { progress: Number(progress) } : {}),
            ...(record !== undefined ? { record: parseRecord(record) } : {}),
          };
        });
        return this.run({ type: 'heartbeat', requestId: this.nextRequest(), workerId: cmd.args[0]!, credential: this.#cred(cmd.args[0]!, kv), tasks });
      }
      case 'tick': {
        const n = Number(cmd.args[0] ?? 1);
        const out: string[] = [];
        for (let i = 0; i < n; i++) {
          const lines = this.run({ type: 'tick' });
          if (lines.length) out.push(`@${this.core.tick}`, ...lines.map((l) => `  ${l}`));
        }
        return out;
      }
      case 'cancel':
        return this.run({ type: 'cancel', requestId: this.nextRequest(), jobId: cmd.args[0]! });
      case 'shutdown':
        return this.run({ type: 'shutdown', reason: kv['reason'] ?? 'signal' });
      case 'restart': {
        // lose-lazy: the crash lost the lazy records written after the last durable batch.
        if (kv['lose-lazy'] === 'true') this.journal = this.journal.slice(0, this.#durable);
        this.core = Scheduler.restore(this.config, this.journal);
        this.#autoPublish = true;
        const out = this.#drain();
        for (const p of this.core.owedPublishes()) {
          out.push(`owed ${p.jobId}/${p.taskId} attempt=${p.attempt} ${p.from} -> ${p.to}`);
          out.push(...this.run({ type: 'published', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt }).map((l) => `  ${l}`));
        }
        return out;
      }
      case 'compact': {
        // The journal restarts from a snapshot of the state.
        this.journal = this.core.snapshot();
        this.#durable = this.journal.length;
        return this.journal.map(formatPersist);
      }
      case 'lookup':
        return cmd.args.map((id) => `${id} ${this.core.job(id) ? 'kept' : this.core.isRetired(id) ? 'retired' : 'unknown'}`);
      case 'jobs':
        return this.core.jobs().map(
          (j) =>
            `${j.id} ${j.state} map=${j.tasks.map.pending}/${j.tasks.map.running}/${j.tasks.map.done} reduce=${j.tasks.reduce.pending}/${j.tasks.reduce.running}/${j.tasks.reduce.done} ` +
            `attempts=${j.attempts.started}/${j.attempts.reissued}/${j.attempts.failed} counters=${JSON.stringify(j.counters)}` +
            (j.outputFiles.length ? ` out=${j.outputFiles.join(',')}` : '') +
            (j.error ? ` error=${j.error}` : ''),
        );
      case 'skipped':
        return (this.core.job(cmd.args[0]!)?.skipped ?? []).map((k) => `${k.taskId} ${formatRecord(k.record)}${k.file ? ` file=${k.file}` : ''} failures=${k.failures} error=${k.error}`);
      case 'backups':
        return (this.core.job(cmd.args[0]!)?.backups ?? []).map(
          (b) =>
            `${b.taskId} original=${b.original.workerId}#${b.original.attempt} backup=${b.backup.workerId}#${b.backup.attempt} ${b.outcome} ` +
            `atLaunch=${b.originalRanMsAtLaunch}ms${b.originalRanMs !== undefined ? ` original=${b.originalRanMs}ms backup=${b.backupRanMs}ms` : ''} (${b.reason})`,
        );
      case 'reexecutions':
        return (this.core.job(cmd.args[0]!)?.reexecutions ?? []).map((r) => `${r.taskId} attempt=${r.attempt} worker=${r.workerId} waiting=${r.reducesWaiting} (${r.reason})`);
      case 'workers':
        return this.core.workers().map(
          (w) => `${w.id} last=${w.lastContactTick}${w.parked ? ' parked' : ''} tasks=[${w.tasks.map((t) => `${t.jobId}/${t.taskId}/${t.attempt}`).join(' ')}]`,
        );
      default:
        throw new Error(`unknown command ${cmd.name}`);
    }
  };

  #drain(): string[] {
    const fx = this.core.ready();
    this.journal.push(...fx.persist, ...fx.persistLazy);
    if (fx.persist.length) this.#durable = this.journal.length - fx.persistLazy.length;
    const out = formatEffects(fx);
    this.core.advance();
    return out;
  }
}
