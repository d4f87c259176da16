/**
 * Follows a job until it ends: the SSE stream GET /v1/jobs/:id/events, with
 * polling of GET /v1/jobs/:id as the fallback (no events route, or the
 * stream broke). Gives up after the coordinator was unreachable for
 * `unreachableMs`. Import dynamically (it pulls undici through http.ts).
 */
import { ROUTES } from '@mr/mapreduce-protocol/routes';
import type { JobEvent, JobView } from '@mr/mapreduce-protocol';
import { ApiError, sseData, type Api } from './http.ts';

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function watchJob(
  api: Api,
  id: string,
  onUpdate: (job: JobView) => void,
  opts: { unreachableMs?: number; pollMs?: number; signal?: AbortSignal } = {},
): Promise<JobView> {
  const unreachableMs = opts.unreachableMs ?? 15_000;
  const pollMs = opts.pollMs ?? 500;
  let useSse = true;
  let downSince: number | undefined;
  let last: JobView | undefined;
  while (true) {
    if (opts.signal?.aborted) throw new ApiError('unreachable', 'interrupted');
    try {
      if (useSse) {
        const res = await api.stream(ROUTES.jobEvents(id), opts.signal);
        downSince = undefined;
        try {
          for await (const data of sseData(res.body)) {
            let ev: JobEvent;
            try {
              ev = JSON.parse(data) as JobEvent;
            } catch {
              continue;
            }
            if (!ev || typeof ev !== 'object' || !ev.job) continue;
            last = ev.job;
            onUpdate(ev.job);
            if (TERMINAL.has(ev.job.state)) {
              res.body.destroy();
              return ev.job;
            }
          }
        } catch (err) {
          if (opts.signal?.aborted) throw new ApiError('unreachable', 'interrupted');
          void err; // the stream broke: reconnect below (or poll)
        }
        // The stream ended without a final state: look once, then reconnect.
        const job = await api.get<JobView>(ROUTES.job(id));
        last = job;
        onUpdate(job);
        if (TERMINAL.has(job.state)) return job;
        await sleep(pollMs);
        continue;
      }
      const job = await api.get<JobView>(ROUTES.job(id));
      downSince = undefined;
      if (!last || JSON.stringify(last) !== JSON.stringify(job)) onUpdate(job);
      last = job;
      if (TERMINAL.has(job.state)) return job;
      await sleep(pollMs);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.kind === 'rejected' && useSse && (err.statusCode === 404 || err.statusCode === 406) && err.code === 'MR_ERR_ROUTE_NOT_FOUND') {
        useSse = false; // no events route: poll
        continue;
      }
      if (err.kind !== 'unreachable' && err.kind !== 'server') throw err;
      const now = Date.now();
      downSince ??= now;
      if (now - downSince >= unreachableMs) throw err;
      await sleep(pollMs);
    }
  }
}

export function progressOf(job: JobView): { done: number; total: number } {
  const t = job.tasks;
  return { done: t.map.done + t.reduce.done, total: t.map.total + t.reduce.total };
}

export function describeProgress(job: JobView): string {
  const t = job.tasks;
  return `${job.state}: map ${t.map.done}/${t.map.total} (${t.map.running} running), reduce ${t.reduce.done}/${t.reduce.total} (${t.reduce.running} running)`;
}
