import { EXIT, type CliContext } from '../context.ts';
import { parse, UsageError, coordinatorUrl } from '../args.ts';
import type { JobList, JobView, WorkerList, WorkerView } from '@mr/mapreduce-protocol';

export const summary = "show the coordinator's jobs and workers (or one job in detail)";

export const usage = `usage: mr status --coordinator URL [--json] [JOB_ID]

Without JOB_ID: a table of the jobs and of the live workers.
With JOB_ID: that job in detail (tasks per phase, attempts, counters, output).

options:
  --coordinator URL   coordinator base URL, e.g. http://127.0.0.1:7070 (required; default: MR_COORDINATOR)
  --json              print the coordinator's JSON instead of tables

exit codes: 0 ok, 2 bad usage or unknown job, 3 coordinator unreachable or token refused.
environment: MR_TOKEN (bearer token), MR_COORDINATOR (default --coordinator).`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parse('status', argv, { coordinator: { type: 'string' }, json: { type: 'boolean' } }, true);
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const v = args.values;
  const coordinator = coordinatorUrl(v.coordinator, ctx.env, 'mr status');
  if (args.positionals.length > 1) throw new UsageError('mr status: at most one JOB_ID');
  const { connect, ApiError } = await import('../http.ts');
  const { ROUTES } = await import('@mr/mapreduce-protocol/routes');
  const api = connect('status', coordinator, ctx.env['MR_TOKEN']);
  try {
    const id = args.positionals[0];
    if (id !== undefined) {
      const job = await api.get<JobView>(ROUTES.job(id));
      ctx.stdout.write(v.json ? `${JSON.stringify(job, null, 2)}\n` : formatJob(job));
      return EXIT.OK;
    }
    const [jobs, workers] = await Promise.all([api.get<JobList>(ROUTES.jobs), api.get<WorkerList>(ROUTES.workers)]);
    ctx.stdout.write(v.json ? `${JSON.stringify({ ...jobs, ...workers }, null, 2)}\n` : formatOverview(jobs.jobs, workers.workers, api.base));
    if (jobs.next && !v.json) ctx.stderr.write(`mr status: more jobs than listed: GET ${ROUTES.jobs}?after=${jobs.next}\n`);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof ApiError) {
      ctx.stderr.write(`mr status: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  } finally {
    await api.close();
  }
}

/** Left-aligned text table; numeric-looking columns right-aligned. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^[\d./ -]*$/.test(r[i] ?? '')));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(headers), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n') + '\n';
}

function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = (now - Date.parse(iso)) / 1000;
  if (!Number.isFinite(s)) return '-';
  if (s < 60) return `${s.toFixed(1)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

function duration(job: JobView): string {
  if (!job.startedAt) return '-';
  const end = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
  return `${((end - Date.parse(job.startedAt)) / 1000).toFixed(1)}s`;
}

export function formatOverview(jobs: JobView[], workers: WorkerView[], base: string): string {
  let out = `coordinator ${base}\n\njobs (${jobs.length})\n`;
  out += jobs.length
    ? table(
        ['ID', 'APP', 'STATE', 'MAP', 'REDUCE', 'ATTEMPTS', 'TIME', 'OUTPUT'],
        jobs.map((j) => [
          j.id,
          j.app,
          j.state,
          `${j.tasks.map.done}/${j.tasks.map.total}`,
          `${j.tasks.reduce.done}/${j.tasks.reduce.total}`,
          String(j.attempts.started),
          duration(j),
          j.output,
        ]),
      )
    : '(none)\n';
  out += `\nworkers (${workers.length})\n`;
  out += workers.length
    ? table(
        ['ID', 'NAME', 'HOST', 'PID', 'SLOTS', 'TASKS', 'LAST CONTACT'],
        workers.map((w) => [
          w.id,
          w.name || '-',
          w.host,
          String(w.pid),
          String(w.slots),
          w.tasks.length ? w.tasks.map((t) => `${t.taskId}#${t.attempt}`).join(',') : '-',
          ago(w.lastContactAt),
        ]),
      )
    : '(none)\n';
  return out;
}

/** The job's framework options in a line (range split points counted, not listed). */
function settingsLine(s: NonNullable<JobView['settings']>): string {
  const parts: string[] = [];
  if (s.combiner === false) parts.push('combiner off');
  if (s.partitioner) parts.push(s.partitioner.type === 'range' ? `range partitioner (${s.partitioner.points.length} split points)` : 'hash partitioner');
  if (s.backupTasks === false) parts.push('no backup tasks');
  if (s.maxBackupTasks !== undefined) parts.push(`at most ${s.maxBackupTasks} backup tasks`);
  if (s.skipBadRecords) parts.push(`skips bad records (at most ${s.maxSkippedRecords ?? 10})`);
  return parts.join(', ') || '-';
}

/** A skipped record for people: `file @byte (line n)` or `key "k" (group g)`. */
function recordLine(k: NonNullable<JobView['skipped']>[number]): string {
  const r = k.record;
  return r.phase === 'map' ? `${k.file ?? `input ${r.input}`} @${r.offset}${r.line !== undefined ? ` (line ${r.line})` : ''}` : `key ${JSON.stringify(r.key)} (group ${r.group})`;
}

export function formatJob(j: JobView): string {
  const lines = [
    `job ${j.id}${j.name ? ` (${j.name})` : ''}`,
    `  app        ${j.app}${j.options && Object.keys(j.options).length ? ` ${JSON.stringify(j.options)}` : ''}`,
    `  state      ${j.state}${j.error ? `: ${j.error}` : ''}`,
    `  inputs     ${j.inputs} file(s); reduces ${j.reduces}`,
    `  submitted  ${j.submittedAt}`,
    `  started    ${j.startedAt ?? '-'}`,
    `  finished   ${j.finishedAt ?? '-'}  (${duration(j)})`,
    `  attempts   started ${j.attempts.started}, re-issued ${j.attempts.reissued}, failed ${j.attempts.failed}`,
    `  output     ${j.output}`,
    ...(j.settings ? [`  settings   ${settingsLine(j.settings)}`] : []),
    '',
    table(
      ['PHASE', 'TOTAL', 'PENDING', 'RUNNING', 'DONE'],
      (['map', 'reduce'] as const).map((p) => [p, String(j.tasks[p].total), String(j.tasks[p].pending), String(j.tasks[p].running), String(j.tasks[p].done)]),
    ).trimEnd(),
  ];
  const counters = Object.entries(j.counters);
  if (counters.length) {
    lines.push('', table(['COUNTER', 'VALUE'], counters.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => [k, String(n)])).trimEnd());
  }
  if (j.skipped?.length) {
    lines.push('', table(['SKIPPED', 'TASK', 'FAILURES', 'ERROR'], j.skipped.map((k) => [recordLine(k), k.taskId, String(k.failures), k.error])).trimEnd());
  }
  if (j.outputFiles.length) lines.push('', `output files (${j.outputFiles.length}):`, ...j.outputFiles.map((f) => `  ${f}`));
  return lines.join('\n') + '\n';
}
