import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  ErrorReply,
  FetchFailure,
  FetchFailureReply,
  HeldIntermediates,
  HeldIntermediatesReply,
  Heartbeat,
  HeartbeatReply,
  PollReply,
  PollRequest,
  TaskAck,
  TaskAckBatch,
  TaskComplete,
  TaskCompleteBatch,
  TaskFail,
  WorkerIdParams,
  WorkerList,
  WorkerRegister,
  WorkerRegistered,
  WORKER_SECRET_HEADER,
} from '@mr/mapreduce-protocol';
import type { ReplyBody } from '@mr/mapreduce-core';
import { refusal } from './jobs.ts';

/** How long a poll is held while the journal is full before 'wait' (the worker polls again). */
const JOURNAL_FULL_POLL_WAIT_MS = 2000;

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 413: ErrorReply, 429: ErrorReply, 503: ErrorReply };

/** What the core compares: a hash of the worker's secret (the secret itself is never stored). */
function credential(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** The credential of a request's x-mr-worker-secret header ('' without one: matches no worker). */
function requestCredential(req: FastifyRequest): string {
  const h = req.headers[WORKER_SECRET_HEADER];
  return typeof h === 'string' && h.length > 0 && h.length <= 256 ? credential(h) : '';
}

function expect<K extends ReplyBody['kind']>(r: ReplyBody, kind: K): Extract<ReplyBody, { kind: K }> {
  if (r.kind === kind) return r as Extract<ReplyBody, { kind: K }>;
  throw refusal(r);
}

/** The worker protocol: only the worker credential (MR_WORKER_TOKEN) is accepted here. */
const worker = { auth: 'worker' as const };

const workerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const driver = app.scheduler;
  const cfg = driver.core.config;

  app.get('/v1/workers', { schema: { response: { 200: WorkerList, ...errors } } }, async () => ({ workers: driver.workerViews() }));

  app.post('/v1/workers', { config: worker, schema: { body: WorkerRegister, response: { 201: WorkerRegistered, ...errors } } }, async (req, reply) => {
    const b = req.body;
    // A per-worker secret: every later request of this worker id must carry it, so no one else can act for it.
    const secret = randomBytes(32).toString('base64url');
    const r = expect(
      await driver.request({ type: 'register', worker: { name: b.name ?? `${b.host}:${b.pid}`, pid: b.pid, host: b.host, slots: b.slots }, credential: credential(secret) }),
      'registered',
    );
    return reply.status(201).send({ workerId: r.workerId, secret, pollTimeoutMs: cfg.pollTimeoutTicks * cfg.tickMs, heartbeatIntervalMs: cfg.heartbeatIntervalTicks * cfg.tickMs });
  });

  // A poll with no body is a poll with defaults.
  const emptyBody = async (req: { body: unknown }): Promise<void> => {
    if (req.body === undefined || req.body === null) req.body = {};
  };

  app.post(
    '/v1/workers/:workerId/poll',
    { config: worker, preValidation: emptyBody, schema: { params: WorkerIdParams, body: PollRequest, response: { 200: PollReply, ...errors } } },
    async (req, reply) => {
      const { workerId } = req.params;
      const { free } = req.body;
      let requestId = '';
      const gone = (): void => {
        if (!reply.raw.writableFinished) driver.forget(requestId);
      };
      // No new hand-outs while the journal cannot be written (their lease records could not be made durable): 'wait'.
      if (driver.journalFull) {
        await driver.writableOrAfter(Math.min(cfg.pollTimeoutTicks * cfg.tickMs, JOURNAL_FULL_POLL_WAIT_MS));
        if (driver.journalFull) return { type: 'wait' as const };
      }
      reply.raw.once('close', gone);
      const r = await driver.request({ type: 'poll', workerId, credential: requestCredential(req), free }, (id) => (requestId = id));
      reply.raw.off('close', gone);
      return expect(r, 'poll').reply;
    },
  );

  app.post('/v1/workers/:workerId/complete', { config: worker, schema: { params: WorkerIdParams, body: TaskComplete, response: { 200: TaskAck, ...errors } } }, async (req) => {
    const { workerId } = req.params;
    const b = req.body;
    const r = await driver.request({
      type: 'complete', workerId, credential: requestCredential(req), jobId: b.jobId, taskId: b.taskId, attempt: b.attempt, durationMs: b.durationMs, files: b.files, counters: b.counters,
      location: b.location,
    });
    return expect(r, 'ack').ack;
  });

  // Completions of several slots in one request: stepped together, so their records share one fsync.
  app.post(
    '/v1/workers/:workerId/complete-batch',
    { config: worker, schema: { params: WorkerIdParams, body: TaskCompleteBatch, response: { 200: TaskAckBatch, ...errors } } },
    async (req) => {
      const { workerId } = req.params;
      const { completions } = req.body;
      const credential = requestCredential(req);
      const replies = await Promise.all(
        completions.map((b) =>
          driver.request({
            type: 'complete', workerId, credential, jobId: b.jobId, taskId: b.taskId, attempt: b.attempt, durationMs: b.durationMs, files: b.files, counters: b.counters, location: b.location,
          }),
        ),
      );
      // A refusal (unknown worker, another worker's secret, files that are not the attempt's) answers the request.
      return { acks: replies.map((r) => expect(r, 'ack').ack) };
    },
  );

  app.post('/v1/workers/:workerId/fail', { config: worker, schema: { params: WorkerIdParams, body: TaskFail, response: { 200: TaskAck, ...errors } } }, async (req) => {
    const { workerId } = req.params;
    const b = req.body;
    const r = await driver.request({ type: 'fail', workerId, credential: requestCredential(req), jobId: b.jobId, taskId: b.taskId, attempt: b.attempt, error: b.error, retryable: b.retryable, ...(b.record ? { record: b.record } : {}) });
    return expect(r, 'ack').ack;
  });

  app.post('/v1/workers/:workerId/heartbeat', { config: worker, schema: { params: WorkerIdParams, body: Heartbeat, response: { 200: HeartbeatReply, ...errors } } }, async (req) => {
    const { workerId } = req.params;
    const b = req.body;
    const r = await driver.request({ type: 'heartbeat', workerId, credential: requestCredential(req), tasks: b.tasks });
    return expect(r, 'heartbeat').reply;
  });

  // Worker shuffle: a reduce could not fetch a map's output; the answer says where it is now (or to wait, or to stop).
  app.post(
    '/v1/workers/:workerId/fetch-failure',
    { config: worker, schema: { params: WorkerIdParams, body: FetchFailure, response: { 200: FetchFailureReply, ...errors } } },
    async (req) => {
      const { workerId } = req.params;
      const b = req.body;
      const r = await driver.request({
        type: 'fetch-failed', workerId, credential: requestCredential(req), jobId: b.jobId, taskId: b.taskId, attempt: b.attempt, map: b.map, mapAttempt: b.mapAttempt, error: b.error,
      });
      return expect(r, 'fetch').reply;
    },
  );

  // Worker shuffle: which of the jobs whose map output a worker keeps are over (it deletes their files).
  app.post(
    '/v1/workers/:workerId/intermediates',
    { config: worker, schema: { params: WorkerIdParams, body: HeldIntermediates, response: { 200: HeldIntermediatesReply, ...errors } } },
    async (req) => {
      const r = await driver.request({ type: 'held', workerId: req.params.workerId, credential: requestCredential(req), jobs: req.body.jobs });
      return { drop: expect(r, 'drop').jobs };
    },
  );
};

export default workerRoutes;
