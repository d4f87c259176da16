import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { canonicalJobId, ErrorReply, JobCreated, JobIdParams, JobList, JobListQuery, JobSubmit, JobView, TaskList, TaskListQuery, type JobEvent } from '@mr/mapreduce-protocol';
import type { ReplyBody, SchedulerEvent } from '@mr/mapreduce-core';
import { validateSubmission } from '../plugins/app/validate.ts';
import {
  ERR_BAD_COMPLETION,
  ERR_BAD_CURSOR,
  ERR_BAD_REPORT,
  ERR_BAD_IDEMPOTENCY_KEY,
  ERR_IDEMPOTENCY_CONFLICT,
  ERR_JOB_FINISHED,
  ERR_JOB_NOT_FOUND,
  ERR_JOB_RETIRED,
  ERR_JOB_TOO_BIG,
  ERR_OUTPUT_IN_USE,
  ERR_SHUTTING_DOWN,
  ERR_TOO_MANY_JOBS,
  ERR_TOO_MANY_WORKERS,
  ERR_WORKER_SECRET,
  ERR_WORKER_UNKNOWN,
  ERR_JOURNAL_FULL,
} from '../errors.ts';

const errors = {
  400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply, 410: ErrorReply, 413: ErrorReply, 422: ErrorReply, 429: ErrorReply, 503: ErrorReply, 507: ErrorReply,
};

/** New work is refused while the journal cannot be written (a full disk): 507, nothing changes; reads go on. */
export function refuseWhileJournalFull(driver: { journalFull: NodeJS.ErrnoException | undefined }): void {
  const err = driver.journalFull;
  if (err) throw ERR_JOURNAL_FULL(`the coordinator's journal cannot be written (${err.code}: ${err.message}); new work is refused until space returns (reads are served; retry later)`);
}

/** Idempotency-Key: 1-255 visible ASCII characters. */
const KEY_RE = /^[\x21-\x7e]{1,255}$/;

function idempotencyKey(req: FastifyRequest): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  if (Array.isArray(raw) || !KEY_RE.test(raw)) throw ERR_BAD_IDEMPOTENCY_KEY('Idempotency-Key must be one header of 1 to 255 visible ASCII characters');
  return raw;
}

/** The same request, whatever its key order, gives the same fingerprint. */
function fingerprint(body: unknown): string {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, canon(x)]));
    return v;
  };
  return createHash('sha256').update(JSON.stringify(canon(body))).digest('base64url');
}

export function refusal(body: ReplyBody): Error {
  if (body.kind !== 'refused') return new Error(`unexpected reply ${body.kind}`);
  switch (body.code) {
    case 'not-found':
      return ERR_JOB_NOT_FOUND(body.message.replace(/^no job /, ''));
    case 'too-many-jobs':
      return ERR_TOO_MANY_JOBS(body.message);
    case 'too-many-workers':
      return ERR_TOO_MANY_WORKERS(body.message);
    case 'shutting-down':
      return ERR_SHUTTING_DOWN(body.message);
    case 'idempotency-conflict':
      return ERR_IDEMPOTENCY_CONFLICT(body.message);
    case 'job-too-big':
      return ERR_JOB_TOO_BIG(body.message);
    case 'output-in-use':
      return ERR_OUTPUT_IN_USE(body.message);
    case 'unknown-worker':
      return ERR_WORKER_UNKNOWN(body.message);
    case 'worker-credential':
      return ERR_WORKER_SECRET(body.message);
    case 'bad-completion':
      return ERR_BAD_COMPLETION(body.message);
    case 'bad-report':
      return ERR_BAD_REPORT(body.message);
  }
}

const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const driver = app.scheduler;

  // With an Idempotency-Key, a retry answers the job the key created (200) instead of creating another (201).
  app.post('/v1/jobs', { schema: { body: JobSubmit, response: { 200: JobCreated, 201: JobCreated, ...errors } } }, async (req, reply) => {
    refuseWhileJournalFull(driver);
    const key = idempotencyKey(req);
    const idempotency = key === undefined ? undefined : { key, fingerprint: fingerprint(req.body) };
    const prior = key === undefined ? undefined : driver.core.jobForKey(key);
    if (prior && idempotency) {
      if (prior.fingerprint !== idempotency.fingerprint) throw ERR_IDEMPOTENCY_CONFLICT(`Idempotency-Key "${key}" was used for another request (job ${prior.jobId})`);
      // The job may have been accepted but its record not yet durable: answer once it is.
      await driver.journal.durable();
      return reply.status(200).send({ id: prior.jobId, state: driver.core.job(prior.jobId)?.state ?? prior.state });
    }
    const spec = await validateSubmission(req.body, app.inputRoots, app.splitBytes, app.outputPlaces);
    const r = await driver.submit(spec, idempotency);
    if (r.kind !== 'created') throw refusal(r);
    return reply.status(r.existing ? 200 : 201).send({ id: r.jobId, state: r.state });
  });

  // Jobs kept, oldest first: ?state= (repeatable) filters, limit (1-1000, default 1000) and after (the previous page's next) page.
  app.get('/v1/jobs', { schema: { querystring: JobListQuery, response: { 200: JobList, ...errors } } }, async (req) => {
    const { state, limit = 1000, after } = req.query;
    const ids = driver.core.jobIds();
    let start = 0;
    if (after !== undefined) {
      const i = ids.indexOf(canonicalJobId(after));
      if (i < 0) throw ERR_BAD_CURSOR(`after=${after}: no such job is kept (retired, or never existed)`);
      start = i + 1;
    }
    const jobs: JobView[] = [];
    let next: string | undefined;
    for (let i = start; i < ids.length; i++) {
      const job = driver.jobView(ids[i]!);
      if (!job || (state && !state.includes(job.state))) continue;
      if (jobs.length === limit) {
        next = jobs[jobs.length - 1]!.id;
        break;
      }
      jobs.push(job);
    }
    return { jobs, ...(next ? { next } : {}) };
  });

  app.get('/v1/jobs/:id', { schema: { params: JobIdParams, response: { 200: JobView, ...errors } } }, async (req) => {
    const id = canonicalJobId(req.params.id);
    const v = driver.jobView(id);
    if (!v) throw driver.core.isRetired(id) ? ERR_JOB_RETIRED(id, String(driver.core.config.retainJobs)) : ERR_JOB_NOT_FOUND(id);
    return v;
  });

  // A job's tasks with their attempts, a page at a time (limit 1-1000, default 100; after = the previous page's next).
  app.get('/v1/jobs/:id/tasks', { schema: { params: JobIdParams, querystring: TaskListQuery, response: { 200: TaskList, ...errors } } }, async (req) => {
    const id = canonicalJobId(req.params.id);
    const { limit = 100, after } = req.query;
    const job = driver.jobView(id);
    if (!job) throw driver.core.isRetired(id) ? ERR_JOB_RETIRED(id, String(driver.core.config.retainJobs)) : ERR_JOB_NOT_FOUND(id);
    let start = 0;
    if (after !== undefined) {
      const [phase, n] = after.split('-');
      const index = Number(n);
      const count = phase === 'map' ? job.tasks.map.total : job.tasks.reduce.total;
      if (index >= count) throw ERR_BAD_CURSOR(`after=${after}: job ${id} has ${count} ${phase} tasks`);
      start = (phase === 'map' ? 0 : job.tasks.map.total) + index + 1;
    }
    const page = driver.taskPage(id, start, limit);
    if (!page) throw ERR_JOB_NOT_FOUND(id);
    return page;
  });

  app.delete('/v1/jobs/:id', { schema: { params: JobIdParams, response: { 200: JobView, ...errors } } }, async (req) => {
    const id = canonicalJobId(req.params.id);
    if (driver.core.isRetired(id)) throw ERR_JOB_RETIRED(id, String(driver.core.config.retainJobs));
    refuseWhileJournalFull(driver);
    const r = await driver.request({ type: 'cancel', jobId: id });
    if (r.kind !== 'cancelled') throw refusal(r);
    if (r.state !== 'cancelled') throw ERR_JOB_FINISHED(id, r.state);
    return driver.jobView(id)!;
  });

  app.get('/v1/jobs/:id/events', { schema: { params: JobIdParams, response: { 404: ErrorReply, 401: ErrorReply, 410: ErrorReply } } }, async (req, reply) => {
    const id = canonicalJobId(req.params.id);
    const first = driver.jobView(id);
    if (!first) throw driver.core.isRetired(id) ? ERR_JOB_RETIRED(id, String(driver.core.config.retainJobs)) : ERR_JOB_NOT_FOUND(id);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (type: JobEvent['type']): boolean => {
      const job = driver.jobView(id)!;
      const ev: JobEvent = { type, job };
      res.write(`event: ${type}\ndata: ${JSON.stringify(ev)}\n\n`);
      return job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled';
    };
    let lastState = first.state;
    const done = (): void => {
      driver.off('event', onEvent);
      clearInterval(keepAlive);
      if (!res.writableEnded) res.end();
    };
    const onEvent = (e: SchedulerEvent): void => {
      if (!('jobId' in e) || e.jobId !== id) return;
      if (e.type !== 'job-progress' && e.type !== 'job-finished' && e.type !== 'job-started' && e.type !== 'task-committed') return;
      const state = driver.jobView(id)!.state;
      const finished = send(state !== lastState ? 'state' : 'progress');
      lastState = state;
      if (finished) done();
    };
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    keepAlive.unref();
    res.on('close', done);
    if (send('state')) return done();
    driver.on('event', onEvent);
  });
};

export default jobRoutes;
