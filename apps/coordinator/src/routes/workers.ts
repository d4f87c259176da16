import type { FastifyInstance } from 'fastify';
import {
  ErrorReply,
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
} from '@mr/mapreduce-protocol';
import { ERR_TOO_MANY_WORKERS } from '../errors.ts';

const errors = { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 413: ErrorReply, 429: ErrorReply, 503: ErrorReply };

export default async function workerRoutes(app: FastifyInstance): Promise<void> {
  const driver = app.scheduler;
  const cfg = driver.core.config;

  app.get('/v1/workers', { schema: { response: { 200: WorkerList, ...errors } } }, async () => ({ workers: driver.workerViews() }));

  app.post('/v1/workers', { schema: { body: WorkerRegister, response: { 201: WorkerRegistered, ...errors } } }, async (req, reply) => {
    const b = req.body as WorkerRegister;
    const r = await driver.request({ type: 'register', worker: { name: b.name ?? `${b.host}:${b.pid}`, pid: b.pid, host: b.host, slots: b.slots } });
    if (r.kind !== 'registered') throw ERR_TOO_MANY_WORKERS(r.kind === 'refused' ? r.message : 'refused');
    return reply.status(201).send({ workerId: r.workerId, pollTimeoutMs: cfg.pollTimeoutTicks * cfg.tickMs, heartbeatIntervalMs: cfg.heartbeatIntervalTicks * cfg.tickMs });
  });

  // A poll with no body is a poll with defaults.
  const emptyBody = async (req: { body: unknown }): Promise<void> => {
    if (req.body === undefined || req.body === null) req.body = {};
  };

  app.post(
    '/v1/workers/:workerId/poll',
    { preValidation: emptyBody, schema: { params: WorkerIdParams, body: PollRequest, response: { 200: PollReply, ...errors } } },
    async (req, reply) => {
      const { workerId } = req.params as WorkerIdParams;
      const { free } = req.body as PollRequest;
      let requestId = '';
      const gone = (): void => {
        if (!reply.raw.writableFinished) driver.forget(requestId);
      };
      reply.raw.once('close', gone);
      const r = await driver.request({ type: 'poll', workerId, free }, (id) => (requestId = id));
      reply.raw.off('close', gone);
      if (r.kind !== 'poll') throw new Error(`unexpected reply ${r.kind}`);
      return r.reply;
    },
  );

  app.post('/v1/workers/:workerId/complete', { schema: { params: WorkerIdParams, body: TaskComplete, response: { 200: TaskAck, ...errors } } }, async (req) => {
    const { workerId } = req.params as WorkerIdParams;
    const b = req.body as TaskComplete;
    const r = await driver.request({ type: 'complete', workerId, jobId: b.jobId, taskId: b.taskId, attempt: b.attempt, durationMs: b.durationMs, files: b.files, counters: b.counters });
    if (r.kind !== 'ack') throw new Error(`unexpected reply ${r.kind}`);
    return r.ack;
  });

  // Completions of several slots in one request: stepped together, so their records share one fsync.
  app.post(
    '/v1/workers/:workerId/complete-batch',
    { schema: { params: WorkerIdParams, body: TaskCompleteBatch, response: { 200: TaskAckBatch, ...errors } } },
    async (req) => {
      const { workerId } = req.params as WorkerIdParams;
      const { completions } = req.body as TaskCompleteBatch;
      const replies = await Promise.all(
        completions.map((b) =>
          driver.request({ type: 'complete', workerId, jobId: b.jobId, taskId: b.taskId, attempt: b.attempt, durationMs: b.durationMs, files: b.files, counters: b.counters }),
        ),
      );
      return { acks: replies.map((r) => (r.kind === 'ack' ? r.ack : { accepted: false, reason: 'unknown-task' as const })) };
    },
  );

  app.post('/v1/workers/:workerId/fail', { schema: { params: WorkerIdParams, body: TaskFail, response: { 200: TaskAck, ...errors } } }, async (req) => {
    const { workerId } = req.params as WorkerIdParams;
    const b = req.body as TaskFail;
    const r = await driver.request({ type: 'fail', workerId, jobId: b.jobId, taskId: b.taskId, attempt: b.attempt, error: b.error, retryable: b.retryable });
    if (r.kind !== 'ack') throw new Error(`unexpected reply ${r.kind}`);
    return r.ack;
  });

  app.post('/v1/workers/:workerId/heartbeat', { schema: { params: WorkerIdParams, body: Heartbeat, response: { 200: HeartbeatReply, ...errors } } }, async (req) => {
    const { workerId } = req.params as WorkerIdParams;
    const b = req.body as Heartbeat;
    const r = await driver.request({ type: 'heartbeat', workerId, tasks: b.tasks });
    if (r.kind !== 'heartbeat') throw new Error(`unexpected reply ${r.kind}`);
    return r.reply;
  });
}
