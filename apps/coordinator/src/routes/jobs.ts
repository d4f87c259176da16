import type { FastifyInstance } from 'fastify';
import { ErrorReply, JobCreated, JobIdParams, JobList, JobSubmit, JobView, type JobEvent } from '@mr/mapreduce-protocol';
import type { ReplyBody, SchedulerEvent } from '@mr/mapreduce-core';
import { validateSubmission } from '../plugins/app/validate.ts';
import { ERR_JOB_FINISHED, ERR_JOB_NOT_FOUND, ERR_SHUTTING_DOWN, ERR_TOO_MANY_JOBS } from '../errors.ts';

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply, 413: ErrorReply, 429: ErrorReply, 503: ErrorReply };

export function refusal(body: ReplyBody): Error {
  if (body.kind !== 'refused') return new Error(`unexpected reply ${body.kind}`);
  switch (body.code) {
    case 'not-found':
      return ERR_JOB_NOT_FOUND(body.message.replace(/^no job /, ''));
    case 'too-many-jobs':
    case 'too-many-workers':
      return ERR_TOO_MANY_JOBS(body.message);
    case 'shutting-down':
      return ERR_SHUTTING_DOWN(body.message);
  }
}

export default async function jobRoutes(app: FastifyInstance): Promise<void> {
  const driver = app.scheduler;

  app.post('/v1/jobs', { schema: { body: JobSubmit, response: { 201: JobCreated, ...errors } } }, async (req, reply) => {
    const spec = await validateSubmission(req.body as JobSubmit, app.inputRoots);
    const r = await driver.request({ type: 'submit', job: spec });
    if (r.kind !== 'created') throw refusal(r);
    return reply.status(201).send({ id: r.jobId, state: r.state });
  });

  app.get('/v1/jobs', { schema: { response: { 200: JobList, ...errors } } }, async () => ({ jobs: driver.jobViews() }));

  app.get('/v1/jobs/:id', { schema: { params: JobIdParams, response: { 200: JobView, ...errors } } }, async (req) => {
    const { id } = req.params as JobIdParams;
    const v = driver.jobView(id);
    if (!v) throw ERR_JOB_NOT_FOUND(id);
    return v;
  });

  app.delete('/v1/jobs/:id', { schema: { params: JobIdParams, response: { 200: JobView, ...errors } } }, async (req) => {
    const { id } = req.params as JobIdParams;
    const r = await driver.request({ type: 'cancel', jobId: id });
    if (r.kind !== 'cancelled') throw refusal(r);
    if (r.state !== 'cancelled') throw ERR_JOB_FINISHED(id, r.state);
    return driver.jobView(id)!;
  });

  app.get('/v1/jobs/:id/events', { schema: { params: JobIdParams, response: { 404: ErrorReply, 401: ErrorReply } } }, async (req, reply) => {
    const { id } = req.params as JobIdParams;
    const first = driver.jobView(id);
    if (!first) throw ERR_JOB_NOT_FOUND(id);
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
}
