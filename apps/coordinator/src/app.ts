/**
 * The coordinator as a buildable Fastify app (no listen): service kit
 * defaults, the scheduler driver, and the job and worker routes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, realpath, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LogController } from 'fastify';
import { DEFAULT_SPLIT_BYTES } from '@mr/mapreduce-apps';
import { buildInfo, createService, DiskFaults, diskFaultRoutes, type BuildInfo, type Service } from '@mr/service-kit';
import { createRegistry } from '@mr/observability';
import { DEFAULT_CONFIG, walkImage, type Scheduler, type SchedulerConfig } from '@mr/mapreduce-core';
import { SchedulerDriver, type DriverOptions } from './plugins/app/scheduler-driver.ts';
import { StorageArbiter, type Arbiter } from './replication/arbiter.ts';
import { StandbyFollower } from './replication/follower.ts';
import { Replication } from './replication/replication.ts';
import { ReplicationSource } from './replication/source.ts';
import { hasCode } from '@mr/errors';
import { ERR_ARBITER_UNAVAILABLE, ERR_NOT_ACTIVE } from './errors.ts';
import standbyRoutes from './routes/standby.ts';
import { resolveRoots, type OutputPlaces } from './plugins/app/validate.ts';
import { lockDataDir } from './plugins/app/lock.ts';
import jobRoutes from './routes/jobs.ts';
import workerRoutes from './routes/workers.ts';

declare module 'fastify' {
  interface FastifyInstance {
    scheduler: SchedulerDriver;
    inputRoots: string[];
    /** Default split size of submitted jobs (bytes). */
    splitBytes: number;
    outputPlaces: OutputPlaces;
    replication: Replication;
  }
}

export interface CoordinatorOptions {
  /** State directory: journal.jsonl and jobs/<id>/{work,out}. */
  dataDir: string;
  /** Lease: a task not finished this long after hand-out, or after its worker's last heartbeat naming it, goes to another worker. Default 10000. */
  taskTimeoutMs?: number;
  /** Submitted inputs must lie under one of these (symlinks resolved). None: every submission is refused. */
  inputRoots?: string[];
  /**
   * Submitted outputs must lie under one of these (symlinks resolved). Default:
   * the input roots. Never the data dir, an input root itself, or a non-empty directory.
   */
  outputRoots?: string[];
  /** Tell workers to exit once every submitted job finished. */
  exitWhenDone?: boolean;
  /** Default bytes of input per map task (a job's splitSize overrides it). Default 64 MiB. */
  splitBytes?: number;
  /** Client token (MR_TOKEN): job API. */
  token?: string | undefined;
  /** Worker credential (MR_WORKER_TOKEN): the worker protocol. Required when token is set. */
  workerToken?: string | undefined;
  logLevel?: string | false;
  /** Tick length (default 100 ms); the lease and timeouts are counted in ticks. */
  tickMs?: number;
  /** A worker silent this long (not in a poll) is lost and its tasks are re-issued. Default 5000. */
  heartbeatTimeoutMs?: number;
  /** How long a poll is held before 'wait'. Default 10000. */
  pollTimeoutMs?: number;
  /** Attempts per task before the job fails. Default 10. */
  maxAttempts?: number;
  /** maps x reduces of one job (intermediate files). Default 1,000,000. */
  maxIntermediatesPerJob?: number;
  /** Tasks (maps + reduces) of all unfinished jobs together. Default 1,000,000. */
  maxQueuedTasks?: number;
  /** Request body limit in bytes. Default 4 MiB. */
  bodyLimit?: number;
  telemetry?: boolean;
  /** Log every request (default off: long polls would flood the log). */
  requestLogging?: boolean;
  /** Finished jobs kept (API, memory, journal); older ones are retired (GET answers 410). Default 1000. */
  retainJobs?: number;
  /** Keep finished jobs' intermediate files (debugging). Default false. */
  keepIntermediates?: boolean;
  /** Journal compaction threshold in records (see DriverOptions.compactRecords). Default 10,000. */
  compactRecords?: number;
  /** Version and commit for GET /v1/version and the OpenAPI document. Default: package.json's version, MR_GIT_COMMIT. */
  build?: BuildInfo;
  /**
   * After a restart with unfinished jobs, hand out no task for this long. Leases
   * are journaled, so this only spares re-running attempts whose lease record a
   * crash lost. Default 0.
   */
  recoveryMs?: number;
  /**
   * An attempt whose worker reports no progress for this long is abandoned and
   * handed out again (its worker told to stop it). 0: no limit. Default 600000 (10 min).
   */
  progressTimeoutMs?: number;
  /** false BREAKS THE RULE (chaos drills only): see SchedulerConfig.fencing. Default true. */
  attemptFencing?: boolean;
  /**
   * Chaos drills only (mr coordinator --drill-unsafe): the journal's writes and fsyncs go
   * through injectable disk faults, set with PUT /v1/drill/disk (client credential).
   */
  drillUnsafe?: boolean;
  /** Retry period of a journal write while the disk is full (default 1000). */
  journalSpaceRetryMs?: number;
  /**
   * Backup tasks (paper §3.6): a straggler gets a backup attempt once it has
   * run backupSlowness times its phase's median and at least backupAfterMs
   * (default 10000, so tasks of a few seconds are never doubled), with no
   * task of its phase pending and half of them done. backupTasks false: never.
   */
  backupTasks?: boolean;
  backupAfterMs?: number;
  backupSlowness?: number;
  /** Where jobs that do not choose keep map output: 'shared' (the job's work dir; the default) or 'worker' (served by the map worker). */
  shuffle?: 'shared' | 'worker';
  /** Worker shuffle: fetch failures reported against one map output before it is run again (default 3). */
  fetchFailuresToRerun?: number;
  /** false BREAKS THE RULE (tests and drills only): lost map outputs are not run again. See SchedulerConfig.reexecuteLostMaps. */
  reexecuteLostMaps?: boolean;
  /**
   * The arbiter (the FT storage node's URL, `mr vm storage`): with it the
   * coordinator claims an epoch at start and can hand over to a standby.
   * Without it, it runs alone as before and no standby can attach.
   */
  storage?: string | undefined;
  /** How long an active waits for the arbiter at start (default 30000). */
  arbiterWaitMs?: number | undefined;
  /** The arbiter's key for this coordinator pair (default "mr-coordinator"). */
  arbiterKey?: string | undefined;
  /** Start as the standby of the active coordinator at this URL (needs storage). */
  standbyOf?: string | undefined;
  /** This coordinator's id at the arbiter. Default: DIR/node-id (made once, random). */
  nodeId?: string | undefined;
  /** The peer credential (MR_PEER_TOKEN): the log stream, acks, the storage node. */
  peerToken?: string | undefined;
  /** Silence of the active (standby) or of the standby's acks (active) that counts as a failure. Default 2000. */
  suspectMs?: number | undefined;
  /** false BREAKS THE RULE (drills only): replies are not held for the standby's acknowledgement. */
  outputRule?: boolean | undefined;
  /** The active sends its state hash after every this many ticks (default 50). */
  hashEveryTicks?: number | undefined;
}

/** This coordinator's id at the arbiter: DIR/node-id, made once. */
async function nodeIdOf(dataDir: string): Promise<string> {
  const file = join(dataDir, 'node-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (/^[\w.-]{1,64}$/.test(id)) return id;
  } catch {
    // made below
  }
  const id = `c-${randomBytes(6).toString('hex')}`;
  await writeFile(file, `${id}\n`);
  return id;
}

/** Calls fn until the arbiter answers (MR_ERR_ARBITER_UNAVAILABLE: again after 200 ms), for up to waitMs. */
async function retrying<T>(fn: () => Promise<T>, waitMs: number, log: { warn(o: object, m: string): void }): Promise<T> {
  const end = Date.now() + waitMs;
  for (let n = 0; ; n++) {
    try {
      return await fn();
    } catch (err) {
      if (!hasCode(err, ERR_ARBITER_UNAVAILABLE.code) || Date.now() >= end) throw err;
      if (n % 10 === 0) log.warn({ err: err.message }, 'arbiter unavailable; retrying');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The state hash a standby compares with the active's (walkImage into sha256). */
export function stateHash(core: Scheduler): string {
  const h = createHash('sha256');
  walkImage(core.image(), (t) => h.update(t));
  return h.digest('hex');
}

export function schedulerConfig(o: CoordinatorOptions): Partial<SchedulerConfig> {
  const tickMs = o.tickMs ?? DEFAULT_CONFIG.tickMs;
  const ticks = (ms: number): number => Math.max(1, Math.ceil(ms / tickMs));
  const heartbeatTimeoutTicks = ticks(o.heartbeatTimeoutMs ?? 5000);
  return {
    tickMs,
    leaseTicks: ticks(o.taskTimeoutMs ?? 10_000),
    heartbeatTimeoutTicks,
    heartbeatIntervalTicks: Math.max(1, Math.min(ticks(1000), Math.floor(heartbeatTimeoutTicks / 4))),
    pollTimeoutTicks: ticks(o.pollTimeoutMs ?? 10_000),
    maxAttempts: o.maxAttempts ?? DEFAULT_CONFIG.maxAttempts,
    exitWhenDone: o.exitWhenDone ?? false,
    workRoot: join(resolve(o.dataDir), 'jobs'),
    retainJobs: o.retainJobs ?? DEFAULT_CONFIG.retainJobs,
    recoveryTicks: Math.ceil((o.recoveryMs ?? 0) / tickMs),
    progressTimeoutTicks: o.progressTimeoutMs === 0 ? 0 : ticks(o.progressTimeoutMs ?? 600_000),
    maxIntermediatesPerJob: o.maxIntermediatesPerJob ?? DEFAULT_CONFIG.maxIntermediatesPerJob,
    maxQueuedTasks: o.maxQueuedTasks ?? DEFAULT_CONFIG.maxQueuedTasks,
    fencing: o.attemptFencing ?? true,
    backupTasks: o.backupTasks ?? DEFAULT_CONFIG.backupTasks,
    backupMinTicks: ticks(o.backupAfterMs ?? 10_000),
    backupSlowness: o.backupSlowness ?? DEFAULT_CONFIG.backupSlowness,
    shuffle: o.shuffle ?? DEFAULT_CONFIG.shuffle,
    fetchFailuresToRerun: o.fetchFailuresToRerun ?? DEFAULT_CONFIG.fetchFailuresToRerun,
    reexecuteLostMaps: o.reexecuteLostMaps ?? true,
  };
}

export async function buildCoordinator(o: CoordinatorOptions): Promise<Service> {
  const registry = createRegistry({ service: 'mr-coordinator' });
  const app = await createService({
    name: 'mr-coordinator',
    token: o.token,
    roleTokens: { worker: o.workerToken, peer: o.peerToken },
    registry,
    logLevel: o.logLevel ?? 'info',
    bodyLimit: o.bodyLimit ?? 4 * 1024 * 1024,
    telemetry: o.telemetry ?? false,
    // Long polls would flood the log; job and worker lifecycle lines are logged by the driver.
    fastify: { logController: new LogController({ disableRequestLogging: o.requestLogging !== true }) },
    build: o.build ?? buildInfo(new URL('../package.json', import.meta.url), process.env),
    health: () => {
      const r = app.replication?.status();
      return {
        jobs: app.scheduler?.core.jobIds().length ?? 0,
        workers: app.scheduler?.core.workers().length ?? 0,
        ...(app.scheduler?.journalFull ? { journal: `full (${app.scheduler.journalFull.code}): new work refused` } : {}),
        ...(r ? { role: r.role, protected: r.protected, replication: r.mode, epoch: r.epoch } : {}),
      };
    },
  });
  let unlock: () => void;
  let driver: SchedulerDriver;
  const diskFaults = o.drillUnsafe ? new DiskFaults() : undefined;
  try {
    unlock = lockDataDir(resolve(o.dataDir));
  } catch (err) {
    await app.close();
    throw err;
  }
  let arbiter: Arbiter | undefined;
  let repl: Replication;
  try {
    const nodeId = o.nodeId ?? (await nodeIdOf(resolve(o.dataDir)));
    arbiter = o.storage ? new StorageArbiter({ url: o.storage, key: o.arbiterKey, token: o.peerToken }) : undefined;
    repl = new Replication(nodeId, o.standbyOf ? 'standby' : 'active');
    const driverOpts: DriverOptions = {
      config: schedulerConfig(o),
      journalFile: join(resolve(o.dataDir), 'journal.jsonl'),
      registry,
      log: app.log,
      compactRecords: o.compactRecords,
      keepIntermediates: o.keepIntermediates,
      diskFaults,
      journalSpaceRetryMs: o.journalSpaceRetryMs,
      requestPrefix: `q${nodeId}-`,
    };
    const source = (d: SchedulerDriver, a: Arbiter, epoch: number): ReplicationSource => {
      const s = new ReplicationSource({
        arbiter: a,
        nodeId,
        epoch,
        log: app.log,
        registry,
        image: () => d.image(),
        hash: () => stateHash(d.core),
        suspectMs: o.suspectMs,
        hashEveryTicks: o.hashEveryTicks,
        outputRule: o.outputRule,
        onDeposed: (why) => d.halt(`deposed: ${why}`),
      });
      d.setInputLog(s);
      repl.source = s;
      return s;
    };
    if (o.standbyOf) {
      if (!arbiter) throw new Error('a standby needs the arbiter (--storage URL) to take over safely');
      const a = arbiter;
      // An empty state until the active's image arrives: the app is built and listening before the
      // stream starts, so that nothing slow stalls the standby while the active waits for its acks.
      const d = await SchedulerDriver.follow(driverOpts);
      repl.activeUrl = new URL(o.standbyOf).origin;
      const follower = new StandbyFollower({
        activeUrl: o.standbyOf,
        nodeId,
        token: o.peerToken,
        arbiter: a,
        log: app.log,
        suspectMs: o.suspectMs,
        load: (image) => d.reload(image),
        apply: (e) => d.apply(e),
        hash: () => stateHash(d.core),
        goLive: async (epoch) => {
          source(d, a, epoch);
          repl.setRole('active');
          repl.liveSince = new Date().toISOString();
          await d.goLive();
        },
      });
      repl.follower = follower;
      driver = d;
      app.addHook('onListen', async () => {
        app.log.info({ active: o.standbyOf, nodeId }, 'standby: asking the active for its state');
        void follower.start();
      });
    } else {
      driver = await SchedulerDriver.start(driverOpts);
      if (arbiter) {
        try {
          // The arbiter may be starting too: ask for up to arbiterWaitMs.
          const flag = await retrying(() => arbiter!.current(), o.arbiterWaitMs ?? 30_000, app.log);
          if (flag.owner !== '' && flag.owner !== nodeId) {
            throw new Error(`coordinator ${flag.owner} holds epoch ${flag.epoch} at ${arbiter.describe}: this one (${nodeId}) was deposed or is new; start it with --standby-of the live one`);
          }
          const r = await retrying(() => arbiter!.claim(nodeId, flag.epoch + 1), o.arbiterWaitMs ?? 30_000, app.log);
          if (!r.won) throw new Error(`lost epoch ${flag.epoch + 1} to ${r.owner} at ${arbiter.describe}`);
          source(driver, arbiter, flag.epoch + 1);
          app.log.info({ epoch: flag.epoch + 1, nodeId, arbiter: arbiter.describe }, 'active: epoch won; running alone (not protected) until a standby attaches');
        } catch (err) {
          await driver.close();
          throw err;
        }
      }
    }
  } catch (err) {
    await arbiter?.close();
    unlock();
    await app.close();
    throw err;
  }
  if (o.reexecuteLostMaps === false) {
    app.log.warn({ brokenRules: ['map-reexecution'] }, 'DRILL-UNSAFE: re-execution of lost map outputs switched off on purpose: reduces wait for output that is gone; never run this outside a drill');
  }
  app.decorate('replication', repl);
  // Only the live coordinator serves jobs and workers; a standby or a deposed one answers 503 (clients try the other).
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/v1/jobs') && !req.url.startsWith('/v1/workers')) return;
    const why = repl.notServing();
    if (why) throw ERR_NOT_ACTIVE(why);
  });
  app.addHook('onResponse', async (req, reply) => {
    if (repl.liveSince && !repl.firstWorkerReplyAt && req.url.startsWith('/v1/workers/') && reply.statusCode === 200) repl.firstWorkerReplyAt = new Date().toISOString();
  });
  if (o.attemptFencing === false) {
    app.log.warn({ brokenRules: ['attempt-fencing'] }, 'DRILL-UNSAFE: attempt fencing switched off on purpose: completions of stale attempts are accepted; never run this outside a drill');
  }
  app.decorate('scheduler', driver);
  if (diskFaults) {
    app.log.warn('DRILL-UNSAFE: the journal\'s disk faults can be injected (PUT /v1/drill/disk); never run this outside a drill');
    diskFaultRoutes(app, diskFaults, 'client');
  }
  const inputRoots = await resolveRoots(o.inputRoots ?? []);
  app.decorate('inputRoots', inputRoots);
  app.decorate('outputPlaces', { outputRoots: o.outputRoots ? await resolveRoots(o.outputRoots) : inputRoots, dataDir: await realpath(resolve(o.dataDir)) });
  app.decorate('splitBytes', o.splitBytes ?? DEFAULT_SPLIT_BYTES);
  // Ticks (leases, heartbeat timeouts) start once the routes are ready: a slow start does not count against restored workers.
  app.addHook('onReady', async () => {
    driver.startTicking();
  });
  app.addHook('preClose', async () => {
    driver.shutdown('closing');
  });
  app.addHook('onClose', async () => {
    await repl.follower?.close();
    repl.source?.close();
    await driver.close();
    await arbiter?.close();
    unlock();
  });
  await app.register(jobRoutes);
  await app.register(workerRoutes);
  await app.register(standbyRoutes, { replicated: arbiter !== undefined });
  return app;
}
