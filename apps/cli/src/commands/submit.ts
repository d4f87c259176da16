import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { EXIT, type CliContext } from '../context.ts';
import { bytesOption, durationMs, parse, UsageError, coordinatorUrl } from '../args.ts';
import type { JobCreated, JobSubmit, JobView } from '@mr/mapreduce-protocol';

export const summary = 'submit a MapReduce job (and optionally wait for it)';

export const usage = `usage: mr submit --coordinator URL --app NAME [--reduces 10] [--output DIR]
                 [--option KEY=VALUE]... [--name LABEL] [--wait] FILE...

Submits a job over FILE... (resolved against the current directory) and
prints its id. The request carries an Idempotency-Key (random, or --idempotency-key)
and is retried with backoff for up to --retry-for (default 30s) while the
coordinator does not answer: a retry never creates a second job. With --wait, follows the job with a progress bar (plain
progress lines when not on a terminal) and exits 0 only if it succeeded.

options:
  --coordinator URL      coordinator base URL, e.g. http://127.0.0.1:7070 (required; default: MR_COORDINATOR)
  --app NAME             the app: wc, indexer, grep, sort, ... (required)
  --reduces N            reduce tasks = output files mr-out-0..N-1 (default 10)
  --output DIR           output directory (default: chosen by the coordinator)
  --option KEY=VALUE     an app option, e.g. --option pattern=whale for grep (repeatable)
  --split-size SIZE      input bytes per map task, e.g. 16MiB (default: the coordinator's,
                         64MiB): bigger files of line-oriented apps are split, smaller combined
  --name LABEL           a label for people
  --no-combiner          do not run the app's combiner (to measure the shuffle without it)
  --partitioner P        hash (the lab's FNV hash) or range (split points sampled from the
                         input at submit: mr-out-0.. concatenated are globally sorted);
                         default: the app's own partitioner, else hash
  --no-backup-tasks      launch no backup attempts for straggling tasks
  --max-backup-tasks N   most backup attempts (default: a tenth of the tasks, at least 1)
  --skip-bad-records     skip records the app's map or reduce fails on twice (paper §4.6)
  --max-skipped-records N  most records skipped (default 10); one more fails the job
  --wait                 wait for the job to finish
  --json                 machine-readable stdout: {"id","state"} once submitted (JobCreated);
                         with --wait, then the finished job (the coordinator's JobView) on
                         a second line; progress and messages go to stderr
  --idempotency-key KEY  the key to send (default: a new random UUID); submitting again
                         with the same key and request returns the same job
  --retry-for DUR        keep retrying an unreachable coordinator this long (default 30s;
                         0 tries once)

exit codes: 0 submitted (with --wait: succeeded), 1 job failed or was cancelled,
            2 bad usage or request refused (the coordinator's message is shown),
            3 coordinator unreachable or token refused.
environment: MR_TOKEN (bearer token), MR_COORDINATOR (default --coordinator).`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parse(
    'submit',
    argv,
    {
      coordinator: { type: 'string' },
      app: { type: 'string' },
      reduces: { type: 'string' },
      output: { type: 'string' },
      option: { type: 'string', multiple: true },
      'split-size': { type: 'string' },
      name: { type: 'string' },
      'no-combiner': { type: 'boolean' },
      partitioner: { type: 'string' },
      'no-backup-tasks': { type: 'boolean' },
      'max-backup-tasks': { type: 'string' },
      'skip-bad-records': { type: 'boolean' },
      'max-skipped-records': { type: 'string' },
      wait: { type: 'boolean' },
      json: { type: 'boolean' },
      'idempotency-key': { type: 'string' },
      'retry-for': { type: 'string' },
    },
    true,
  );
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const v = args.values;
  const coordinator = coordinatorUrl(v.coordinator, ctx.env, 'mr submit');
  if (!v.app) throw new UsageError('mr submit: --app NAME is required');
  if (args.positionals.length === 0) throw new UsageError('mr submit: give at least one input FILE');
  const key = v['idempotency-key'] ?? randomUUID();
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) throw new UsageError('mr submit: --idempotency-key: 1 to 255 visible ASCII characters');
  const retryForMs = v['retry-for'] === undefined ? 30_000 : durationMs(v['retry-for'], '--retry-for');
  const body: JobSubmit = { app: v.app, inputs: args.positionals.map((f) => resolve(f)) };
  // Map functions see the names as typed, as with `mr seq` (indexer output names files).
  if (args.positionals.some((f, i) => f !== body.inputs[i])) body.names = [...args.positionals];
  if (v.reduces !== undefined) {
    // Range checks are the coordinator's: its message says what is allowed.
    if (!/^-?\d+$/.test(v.reduces.trim())) throw new UsageError(`mr submit: --reduces: expected an integer, got "${v.reduces}"`);
    body.reduces = Number(v.reduces);
  }
  if (v['split-size'] !== undefined) body.splitSize = bytesOption(v['split-size'], '--split-size', 0, 1, 2 ** 40);
  if (v.output !== undefined) body.output = resolve(v.output);
  if (v.name !== undefined) body.name = v.name;
  if (v['no-combiner']) body.combiner = false;
  if (v.partitioner !== undefined) {
    if (v.partitioner !== 'hash' && v.partitioner !== 'range') throw new UsageError(`mr submit: --partitioner: hash or range, got "${v.partitioner}"`);
    body.partitioner = v.partitioner;
  }
  if (v['no-backup-tasks']) body.backupTasks = false;
  if (v['skip-bad-records']) body.skipBadRecords = true;
  for (const [flag, field] of [['max-backup-tasks', 'maxBackupTasks'], ['max-skipped-records', 'maxSkippedRecords']] as const) {
    const raw = v[flag];
    if (raw === undefined) continue;
    // Range checks are the coordinator's: its message says what is allowed.
    if (!/^-?\d+$/.test(raw.trim())) throw new UsageError(`mr submit: --${flag}: expected an integer, got "${raw}"`);
    body[field] = Number(raw);
  }
  if (v.option?.length) {
    const options: Record<string, string> = {};
    for (const o of v.option) {
      const i = o.indexOf('=');
      if (i <= 0) throw new UsageError(`mr submit: --option expects KEY=VALUE, got "${o}"`);
      options[o.slice(0, i)] = o.slice(i + 1);
    }
    body.options = options;
  }

  const { startCommandTelemetry } = await import('../telemetry.ts');
  const telemetry = await startCommandTelemetry('submit', ctx.env, 'mr-cli');
  const { connect, ApiError } = await import('../http.ts');
  const { ROUTES } = await import('@mr/mapreduce-protocol/routes');
  const api = connect('submit', coordinator, ctx.env['MR_TOKEN']);
  try {
    const created = await api.postIdempotent<JobCreated>(ROUTES.jobs, body, key, retryForMs);
    ctx.stdout.write(v.json ? `${JSON.stringify({ id: created.id, state: created.state })}\n` : `${created.id}\n`);
    if (!v.wait) return EXIT.OK;
    const job = await follow(api, created.id, ctx);
    if (v.json) ctx.stdout.write(`${JSON.stringify(job)}\n`);
    return report(job, ctx, v.json === true);
  } catch (err) {
    if (err instanceof ApiError) {
      ctx.stderr.write(`mr submit: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  } finally {
    await api.close();
    await telemetry.shutdown();
  }
}

async function follow(api: import('../http.ts').Api, id: string, ctx: CliContext): Promise<JobView> {
  const { watchJob, progressOf, describeProgress } = await import('../job-watch.ts');
  const started = Date.now();
  if (ctx.stderr.isTTY) {
    const { SingleBar, Presets } = (await import('cli-progress')).default;
    const bar = new SingleBar(
      { format: ' {bar} {percentage}% | {value}/{total} tasks | {phase} | {duration_formatted}', stream: ctx.stderr, hideCursor: true, clearOnComplete: false },
      Presets.shades_classic,
    );
    let startedBar = false;
    try {
      return await watchJob(api, id, (job) => {
        const { done, total } = progressOf(job);
        const phase = job.state !== 'running' ? job.state : job.tasks.map.done < job.tasks.map.total ? 'map' : 'reduce';
        if (!startedBar) {
          bar.start(total || 1, done, { phase });
          startedBar = true;
        } else {
          bar.setTotal(total || 1);
          bar.update(done, { phase });
        }
      });
    } finally {
      if (startedBar) bar.stop();
    }
  }
  let lastKey = '';
  return watchJob(api, id, (job) => {
    // One line per finished task or state change, not per start.
    const key = `${job.state} ${job.tasks.map.done} ${job.tasks.reduce.done}`;
    if (key === lastKey) return;
    lastKey = key;
    const line = describeProgress(job);
    ctx.stderr.write(`job ${id} ${line} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  });
}

function report(job: JobView, ctx: CliContext, json: boolean): number {
  const secs = job.startedAt && job.finishedAt ? ((Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000).toFixed(2) : undefined;
  if (job.state === 'succeeded') {
    (json ? ctx.stderr : ctx.stdout).write(`job ${job.id} succeeded${secs ? ` in ${secs} s` : ''}; output in ${job.output} (${job.outputFiles.length} files)\n`);
    return EXIT.OK;
  }
  ctx.stderr.write(`job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}\n`);
  return EXIT.FAILED;
}
