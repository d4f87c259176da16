import { resolve } from 'node:path';
import { EXIT, type CliContext } from '../context.ts';
import { parse, bytesOption, durationMs, intOption, UsageError } from '../args.ts';
import { drillUnsafe, MR_COORDINATOR_RULE_SWITCHES, ruleSwitches, switchOptions } from '../rule-switches.ts';

export const summary = 'run the MapReduce coordinator (job API + worker protocol)';

export const usage = `usage: mr coordinator [--host 127.0.0.1] [--port 7070] [--data DIR] [--task-timeout 10s]
                      [--input-root DIR]... [--output-root DIR]... [--exit-when-done]
                      [--plugins DIR] [--log-level info]

Serves the job API (POST/GET /v1/jobs, GET/DELETE /v1/jobs/:id, /v1/jobs/:id/events,
GET /v1/workers) and the worker protocol, hands tasks to polling workers, and keeps
every accepted job in DIR/journal.jsonl so that a restart forgets none. The journal
is rewritten from a snapshot of the state as it grows, so its size and the restart
time depend on the jobs kept (--retain-jobs), not on the history.
Prints "coordinator listening on URL" once it accepts connections.

options:
  --host HOST          address to bind (default 127.0.0.1; others need MR_TOKEN)
  --port PORT          port (default 7070; 0 picks a free one)
  --data DIR           state directory: journal and per-job work dirs (default ./mr-data)
  --task-timeout DUR   the lease: a task goes to another worker when it is not finished
                       this long after hand-out or after its worker's last heartbeat
                       naming it (heartbeats renew it; default 10s)
  --input-root DIR     submitted input files must lie under DIR (repeatable;
                       default: the current directory)
  --output-root DIR    submitted output directories must lie under DIR (repeatable;
                       default: the input roots and the current directory). Never the
                       data dir, an input root itself, another unfinished job's output,
                       or a directory that already holds files
  --exit-when-done     exit 0 once every submitted job finished and the workers
                       were told to exit
  --max-attempts N     attempts per task before its job fails (default 10)
  --retain-jobs N      finished jobs kept in memory, in the journal and in GET /v1/jobs
                       (default 1000); older ones are retired: GET /v1/jobs/ID answers 410,
                       their Idempotency-Keys are forgotten
  --journal-compact N  rewrite the journal from a snapshot once it holds N records more
                       than twice the snapshot (default 10000)
  --keep-intermediates keep finished jobs' intermediate files under DIR/jobs (debugging;
                       default: removed when a job ends, and at start for jobs not running)
  --heartbeat-timeout DUR  a worker silent this long (no heartbeat, poll or report)
                       is lost and its tasks are handed out again (default 5s)
  --task-progress-timeout DUR  an attempt whose worker reports no progress (bytes and
                       records processed, sent with heartbeats) for this long is
                       abandoned: the worker is told to stop it and the task goes to
                       another worker (default 10m; 0 turns it off). Heartbeats renew
                       the lease, so this is what catches a task stuck on a live worker
  --backup-after DUR   backup tasks (paper §3.6): a straggling task gets a second attempt on
                       an idle worker once it ran this long (default 10s) and twice its
                       phase's median, with nothing of its phase pending and half of it
                       done; the first completion wins (jobs: backupTasks, maxBackupTasks)
  --no-backup-tasks    never launch backup attempts
  --split-size SIZE    input bytes per map task (default 64MiB; e.g. 16MiB): bigger
                       files of line-oriented apps are split, smaller ones combined;
                       a job's splitSize overrides it
  --shuffle MODE       where map output lives for jobs that do not choose (job option shuffle):
                       shared (default: files in the job's work dir under --data, which
                       every worker must share) or worker (kept on the map worker's disk and
                       served by it over HTTP; a lost worker's maps run again)
  --fetch-failures N   worker shuffle: fetch failures reduces report against one map output
                       before that map runs again although its worker still heartbeats (default 3)
  --drill-unsafe --no-attempt-fencing
                       BREAKS A RULE on purpose, for chaos drills only (refused without
                       --drill-unsafe, announced loudly): completions of stale attempts
                       are accepted and heartbeats never make an attempt abandon
  --drill-unsafe --no-map-reexecution
                       BREAKS A RULE on purpose: a worker-shuffle map whose worker was lost
                       (or whose output reduces cannot fetch) is not run again
  --drill-unsafe       (alone, or with a switch) for chaos drills: also mounts
                       PUT/GET /v1/drill/disk, injected journal disk faults (slow writes
                       and fsyncs, ENOSPC, EIO); announced loudly
  --drill-unsafe --no-output-rule
                       BREAKS A RULE on purpose (drills and the standby tests only): the
                       active answers before its standby acknowledged the input
  --storage URL        the arbiter: the FT storage node (mr vm storage). The coordinator
                       claims an epoch there at start (refused when another coordinator
                       holds the newest one) and can then hand over to a standby
  --standby-of URL     run as the standby of the active coordinator at URL (needs
                       --storage): state transfer, then every scheduler input of the
                       active, acknowledged; the active answers a worker or client only
                       after that. When the active fails (its process is gone, or it is
                       silent for --suspect) the standby claims the next epoch and serves
  --arbiter-key KEY    the pair's key at the arbiter (default mr-coordinator)
  --node-id ID         this coordinator's id at the arbiter (default: DIR/node-id, made once)
  --suspect DUR        silence that counts as the peer's failure (default 2s)
  --plugins DIR        accept the user apps of the modules in DIR (default: $MR_PLUGIN_DIR;
                       workers need the same directory)
  --log-level LEVEL    fatal|error|warn|info|debug|trace|silent (default info)
  -h, --help           this text

environment: MR_TOKEN (client token: the job API), MR_WORKER_TOKEN (worker credential:
the worker protocol; required when MR_TOKEN is set, and must differ from it),
MR_PEER_TOKEN (the log stream between active and standby, and the storage node;
required with --storage when MR_TOKEN is set), OTEL_EXPORTER_OTLP_ENDPOINT (export
traces over OTLP/HTTP).

exit codes: 0 stopped cleanly (signal, or every job finished with --exit-when-done,
whatever its outcome: see mr status), 1 stopped on an error, 2 bad usage.`;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parse('coordinator', argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    data: { type: 'string' },
    'task-timeout': { type: 'string' },
    'input-root': { type: 'string', multiple: true },
    'output-root': { type: 'string', multiple: true },
    'exit-when-done': { type: 'boolean' },
    'max-attempts': { type: 'string' },
    'retain-jobs': { type: 'string' },
    'keep-intermediates': { type: 'boolean' },
    'journal-compact': { type: 'string' },
    'heartbeat-timeout': { type: 'string' },
    'task-progress-timeout': { type: 'string' },
    'backup-after': { type: 'string' },
    'no-backup-tasks': { type: 'boolean' },
    'split-size': { type: 'string' },
    shuffle: { type: 'string' },
    'fetch-failures': { type: 'string' },
    'log-level': { type: 'string' },
    plugins: { type: 'string' },
    storage: { type: 'string' },
    'standby-of': { type: 'string' },
    'arbiter-key': { type: 'string' },
    'node-id': { type: 'string' },
    suspect: { type: 'string' },
    ...switchOptions(MR_COORDINATOR_RULE_SWITCHES),
  });
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const v = args.values;
  const host = v.host ?? '127.0.0.1';
  const port = intOption(v.port, '--port', 7070, 0, 65535);
  const taskTimeoutMs = v['task-timeout'] === undefined ? 10_000 : durationMs(v['task-timeout'], '--task-timeout');
  if (taskTimeoutMs < 100) throw new UsageError('--task-timeout: must be at least 100ms');
  const maxAttempts = intOption(v['max-attempts'], '--max-attempts', 10, 1, 999);
  const retainJobs = intOption(v['retain-jobs'], '--retain-jobs', 1000, 0, 1_000_000);
  const compactRecords = intOption(v['journal-compact'], '--journal-compact', 10_000, 1, 100_000_000);
  const heartbeatTimeoutMs = v['heartbeat-timeout'] === undefined ? 5000 : durationMs(v['heartbeat-timeout'], '--heartbeat-timeout');
  if (heartbeatTimeoutMs < 500) throw new UsageError('--heartbeat-timeout: must be at least 500ms');
  const progressTimeoutMs = v['task-progress-timeout'] === undefined ? 600_000 : v['task-progress-timeout'] === '0' ? 0 : durationMs(v['task-progress-timeout'], '--task-progress-timeout');
  if (progressTimeoutMs !== 0 && progressTimeoutMs < 1000) throw new UsageError('--task-progress-timeout: must be at least 1s (or 0: no limit)');
  const backupAfterMs = v['backup-after'] === undefined ? 10_000 : durationMs(v['backup-after'], '--backup-after');
  if (backupAfterMs < 100) throw new UsageError('--backup-after: must be at least 100ms');
  const splitBytes = bytesOption(v['split-size'], '--split-size', 64 * 1024 * 1024, 1, 2 ** 40);
  const shuffle = v.shuffle ?? 'shared';
  if (shuffle !== 'shared' && shuffle !== 'worker') throw new UsageError(`--shuffle: expected shared or worker, got "${shuffle}"`);
  const fetchFailuresToRerun = intOption(v['fetch-failures'], '--fetch-failures', 3, 1, 1000);
  const broken = ruleSwitches('coordinator', v, MR_COORDINATOR_RULE_SWITCHES, ctx);
  if (drillUnsafe(v)) ctx.stderr.write('mr coordinator: !!! DRILL-UNSAFE: journal disk faults can be injected (PUT /v1/drill/disk). Never run this outside a drill. !!!\n');
  const logLevel = v['log-level'] ?? 'info';
  if (!LEVELS.includes(logLevel)) throw new UsageError(`--log-level: expected one of ${LEVELS.join(', ')}, got "${logLevel}"`);
  const dataDir = resolve(v.data ?? 'mr-data');
  const roots = (v['input-root'] ?? []).map((r) => resolve(r));
  const outputRoots = v['output-root']?.map((r) => resolve(r));
  const { existsSync, statSync } = await import('node:fs');
  for (const r of roots) {
    if (!existsSync(r) || !statSync(r).isDirectory()) throw new UsageError(`--input-root: "${r}" is not a directory`);
  }
  for (const r of outputRoots ?? []) {
    if (!existsSync(r) || !statSync(r).isDirectory()) throw new UsageError(`--output-root: "${r}" is not a directory`);
  }
  if (roots.length === 0) {
    roots.push(process.cwd());
    ctx.stderr.write(`mr coordinator: no --input-root given; accepting inputs under ${process.cwd()}\n`);
  }
  const pluginDir = v.plugins ?? ctx.env['MR_PLUGIN_DIR'];
  if (pluginDir) {
    const apps = await import('@mr/mapreduce-apps');
    try {
      const names = await apps.loadPluginApps(resolve(pluginDir));
      ctx.stderr.write(`mr coordinator: plugin apps from ${resolve(pluginDir)}: ${names.join(', ') || '(none)'}\n`);
    } catch (err) {
      throw new UsageError(`mr coordinator: --plugins: ${(err as Error).message}`);
    }
  }
  const { checkBind, credentialsFromEnv } = await import('@mr/service-kit');
  if (v['standby-of'] !== undefined && v.storage === undefined) throw new UsageError('mr coordinator: --standby-of needs --storage URL (the arbiter it claims the epoch from)');
  for (const [flag, u] of [['--storage', v.storage], ['--standby-of', v['standby-of']]] as const) {
    if (u !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(u)) throw new UsageError(`mr coordinator: ${flag}: expected a base URL like http://127.0.0.1:7000, got "${u}"`);
  }
  if (v['arbiter-key'] !== undefined && !/^[\w.-]{1,64}$/.test(v['arbiter-key'])) throw new UsageError('mr coordinator: --arbiter-key: 1-64 letters, digits, ., _ or -');
  if (v['node-id'] !== undefined && !/^[\w.-]{1,64}$/.test(v['node-id'])) throw new UsageError('mr coordinator: --node-id: 1-64 letters, digits, ., _ or -');
  const suspectMs = v.suspect === undefined ? 2000 : durationMs(v.suspect, '--suspect');
  if (suspectMs < 100) throw new UsageError('--suspect: must be at least 100ms');
  const creds = credentialsFromEnv(ctx.env, v.storage !== undefined ? ['worker', 'peer'] : ['worker']);
  if (creds.error !== undefined) throw new UsageError(`mr coordinator: ${creds.error}`);
  const token = creds.token;
  const refused = checkBind(host, token);
  if (refused) throw new UsageError(`mr coordinator: ${refused}`);
  if (!token) ctx.stderr.write('mr coordinator: MR_TOKEN is not set: no authentication, loopback only\n');

  const { startCommandTelemetry } = await import('../telemetry.ts');
  const telemetry = await startCommandTelemetry('coordinator', ctx.env, 'mr-coordinator', port ? `${host}:${port}` : undefined);
  const { startCoordinator } = await import('@mr/coordinator');
  let running;
  try {
    running = await startCoordinator({
      host,
      port,
      dataDir,
      taskTimeoutMs,
      maxAttempts,
      retainJobs,
      compactRecords,
      keepIntermediates: v['keep-intermediates'] ?? false,
      heartbeatTimeoutMs,
      progressTimeoutMs,
      backupAfterMs,
      backupTasks: !v['no-backup-tasks'],
      splitBytes,
      inputRoots: roots,
      outputRoots: outputRoots ?? [...new Set([...roots, process.cwd()])],
      workerToken: creds.roleTokens.worker,
      exitWhenDone: v['exit-when-done'] ?? false,
      attemptFencing: !broken.includes('attempt-fencing'),
      reexecuteLostMaps: !broken.includes('map-reexecution'),
      shuffle,
      fetchFailuresToRerun,
      drillUnsafe: drillUnsafe(v),
      outputRule: !broken.includes('output-rule'),
      storage: v.storage,
      standbyOf: v['standby-of'],
      arbiterKey: v['arbiter-key'],
      nodeId: v['node-id'],
      peerToken: creds.roleTokens.peer ?? (ctx.env['MR_PEER_TOKEN'] || undefined),
      suspectMs,
      token,
      logLevel: logLevel === 'silent' ? false : logLevel,
      telemetry: telemetry.enabled,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    ctx.stderr.write(`mr coordinator: cannot start: ${e.message}\n`);
    await telemetry.shutdown();
    return e.code === 'EADDRINUSE' || e.code === 'EACCES' ? EXIT.USAGE : EXIT.FAILED;
  }
  ctx.stdout.write(`coordinator listening on ${running.url}\n`);
  const onSignal = (sig: string): void => void running.close(`interrupted by ${sig}`);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const { reason } = await running.done;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const jobs = running.app.scheduler.core.jobs();
  const failed = jobs.filter((j) => j.state === 'failed');
  ctx.stderr.write(`mr coordinator: stopped (${reason}); ${jobs.length} job(s), ${failed.length} failed\n`);
  await telemetry.shutdown();
  if (reason === 'fatal error') return EXIT.FAILED;
  return EXIT.OK;
}
