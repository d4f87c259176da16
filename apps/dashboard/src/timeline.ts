/**
 * A job's task timeline: one lane per worker, one bar per task attempt, with
 * its outcome (committed, failed, re-issued after its lease ran out, stale,
 * lost with its worker, or still running). Built from the coordinator's
 * GET /v1/jobs/:id/tasks when it answers; otherwise from the task-attempt
 * spans the workers exported (mr.task.map / mr.task.reduce), which show the
 * attempts that ended (a killed worker exports nothing for its last one).
 */
import type { SpanRecord } from './otlp/decode.ts';

export interface TimelineAttempt {
  lane: string;
  taskId: string;
  phase: string;
  attempt: number;
  startMs: number;
  endMs?: number;
  outcome: string;
}

export interface Timeline {
  source: 'coordinator' | 'traces' | 'none';
  lanes: string[];
  attempts: TimelineAttempt[];
}

type Obj = Record<string, unknown>;

function when(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

function str(...vs: unknown[]): string | undefined {
  for (const v of vs) if (typeof v === 'string' && v) return v;
  return undefined;
}

/** From the coordinator's task list (each task with its attempts). `workerName` maps worker ids to names. */
export function fromTasks(body: unknown, workerName: (id: string) => string | undefined): TimelineAttempt[] {
  const tasks = (body as Obj | null)?.['tasks'];
  if (!Array.isArray(tasks)) return [];
  const out: TimelineAttempt[] = [];
  for (const t of tasks as Obj[]) {
    const taskId = str(t['taskId'], t['id']) ?? '?';
    const phase = str(t['phase'], t['type']) ?? (taskId.startsWith('reduce') ? 'reduce' : 'map');
    const attempts = Array.isArray(t['attempts']) ? (t['attempts'] as Obj[]) : [];
    for (const a of attempts) {
      const start = when(a['startedAt'] ?? a['issuedAt'] ?? a['assignedAt']);
      if (start === undefined) continue;
      const end = when(a['finishedAt'] ?? a['endedAt'] ?? a['completedAt']);
      const worker = str(a['workerId'], a['worker']) ?? '?';
      out.push({
        lane: str(a['workerName']) ?? workerName(worker) ?? worker,
        taskId,
        phase,
        attempt: typeof a['attempt'] === 'number' ? a['attempt'] : 1,
        startMs: start,
        ...(end !== undefined ? { endMs: end } : {}),
        outcome: str(a['outcome'], a['state'], a['status']) ?? (end === undefined ? 'running' : 'done'),
      });
    }
  }
  return out;
}

/** The first of `keys` a span has (attribute names moved from mr.job_id to mr.job.id and friends). */
function attr(s: SpanRecord, ...keys: string[]): string | number | boolean | undefined {
  for (const k of keys) if (s.attributes[k] !== undefined) return s.attributes[k];
  return undefined;
}

/**
 * From task-attempt spans of one job. `laneOf` names a span's lane (its
 * worker). An attempt its worker abandoned, or whose completion the
 * coordinator did not accept (another attempt won, or its lease had run out),
 * is stale.
 */
export function fromSpans(spans: readonly SpanRecord[], jobId: string, laneOf: (s: SpanRecord) => string): TimelineAttempt[] {
  const out: TimelineAttempt[] = [];
  for (const s of spans) {
    if (!s.name.startsWith('mr.task.') || attr(s, 'mr.job.id', 'mr.job_id') !== jobId) continue;
    const stale = attr(s, 'mr.task.abandoned', 'mr.abandoned') === true || attr(s, 'mr.task.accepted') === false;
    out.push({
      lane: laneOf(s),
      taskId: String(attr(s, 'mr.task.id', 'mr.task_id') ?? '?'),
      phase: String(attr(s, 'mr.task.type', 'mr.phase') ?? s.name.slice('mr.task.'.length)),
      attempt: Number(attr(s, 'mr.task.attempt', 'mr.attempt') ?? 1),
      startMs: s.startUs / 1000,
      endMs: s.endUs / 1000,
      outcome: stale ? 'stale' : String(attr(s, 'mr.task.outcome', 'mr.outcome') ?? (s.status.code === 2 ? 'failed' : 'done')),
    });
  }
  return out;
}

export function timeline(source: Timeline['source'], attempts: TimelineAttempt[]): Timeline {
  attempts.sort((a, b) => a.startMs - b.startMs || a.lane.localeCompare(b.lane));
  const lanes = [...new Set(attempts.map((a) => a.lane))].sort();
  return { source, lanes, attempts };
}
