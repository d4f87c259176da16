/**
 * The FT log channel, backup side: POST /v1/vms/:id/log on the node's
 * HTTP/2 Fastify instance (peer credential only: config.auth 'peer').
 *
 * The first frame must be a hello; anything malformed before it is answered
 * with a coded 4xx, anything malformed after it ends the stream (and is
 * logged). The sink decides whether to take the stream (it checks the
 * hello's claim with the storage node) and only a taken stream supersedes the
 * one before it.
 */
import { PassThrough, Readable } from 'node:stream';
import { once } from 'node:events';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Service } from '@mr/service-kit';
import { Type } from 'typebox';
import { FrameDecoder, encodeFrame, type AckFrame, type Frame, type HelloFrame } from '@mr/vmft-protocol';
import { ERR_BAD_LOG, ERR_UNKNOWN_VM } from '../errors.ts';

/** One accepted log stream on the backup. */
export interface LogSession {
  /** Highest contiguous seq already held (the primary resends after it). */
  heldSeq: number;
  /** Frames after the hello (entries, snapshot). Acks go through the sink's `send`. */
  frames(frames: Frame[]): void;
  /** The stream ended or broke. */
  closed(reason: string): void;
}

export interface LogSink {
  /**
   * A primary opened a stream. Reject with a coded error (e.g. 409 not the
   * holder of the epoch at storage, 409 not a backup) to refuse it: a refused
   * stream changes nothing. Once it resolves, the previous session is ended.
   */
  open(hello: HelloFrame, peerUrl: string | undefined, send: (frame: AckFrame) => void): Promise<LogSession>;
  nodeId: string;
  /** This node's URL, announced to the primary in the response (x-ft-peer-url). */
  selfUrl?: string;
}

export interface LogReceiverOptions {
  vmId: string;
  sink: LogSink;
  maxFrameBytes?: number;
}

type Chunks = AsyncIterator<Buffer>;

/** Reads up to the first frame, which must be a hello for this VM; returns it and the frames that came with it. */
async function readHello(iter: Chunks, decoder: FrameDecoder, vmId: string): Promise<{ hello: HelloFrame; rest: Frame[] }> {
  let pending: Frame[] = [];
  while (pending.length === 0) {
    const { value, done } = await iter.next();
    if (done) {
      decoder.end();
      throw ERR_BAD_LOG('the stream ended before a hello frame');
    }
    pending = decoder.push(value);
  }
  const hello = pending.shift()!;
  if (hello.type !== 'hello') throw ERR_BAD_LOG(`the first frame must be a hello, got ${hello.type}`);
  if (hello.vmId !== vmId) throw ERR_UNKNOWN_VM(hello.vmId);
  return { hello, rest: pending };
}

/** Feeds the session every frame until the stream ends or the session is ended; returns why it stopped. */
async function pump(iter: Chunks, decoder: FrameDecoder, session: LogSession, first: Frame[], out: PassThrough, ended: () => boolean): Promise<string> {
  if (first.length > 0) session.frames(first);
  while (!ended()) {
    // Acks back up: read no more until the primary takes them.
    if (out.writableNeedDrain) await once(out, 'drain');
    const { value, done } = await iter.next();
    if (done) {
      decoder.end();
      return 'the primary ended the log stream';
    }
    const frames = decoder.push(value);
    if (!ended() && frames.length > 0) session.frames(frames);
  }
  return 'closed';
}

type Sessions = Set<{ end(reason: string): void }>;

/** Registers POST /v1/vms/:id/log on an http2 Fastify instance; the handle ends its streams. */
export function registerLogReceiver(app: Service, opts: LogReceiverOptions): { closeAll(): void; active(): number } {
  const sessions: Sessions = new Set();
  void app.register(logRoute, { ...opts, sessions });
  app.addHook('preClose', async () => {
    for (const s of [...sessions]) s.end('node shutting down');
  });
  return {
    closeAll: () => {
      for (const s of [...sessions]) s.end('closed');
    },
    active: () => sessions.size,
  };
}

/** The route itself: its octet-stream parser hands the handler the raw request stream (this plugin only). */
const logRoute: FastifyPluginAsyncTypebox<LogReceiverOptions & { sessions: Sessions }> = async (app, opts) => {
  const { sessions } = opts;
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.post('/v1/vms/:id/log', {
    config: { auth: 'peer' },
    schema: {
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }),
      headers: Type.Object({ 'content-type': Type.String({ pattern: '^application/octet-stream' }) }),
    },
  }, async (req, reply) => {
    if (req.params.id !== opts.vmId) throw ERR_UNKNOWN_VM(req.params.id);
    const input = req.body;
    if (!(input instanceof Readable)) throw ERR_BAD_LOG('the log channel takes a stream of application/octet-stream frames');
    const decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes });
    const iter = input[Symbol.asyncIterator]() as Chunks;
    const { hello, rest } = await readHello(iter, decoder, opts.vmId);
    const peerUrl = typeof req.headers['x-ft-peer-url'] === 'string' ? req.headers['x-ft-peer-url'] : undefined;
    const out = new PassThrough();
    let ended = false;
    // Acks the sink sends while it opens the session follow our hello.
    let early: AckFrame[] | undefined = [];
    const send = (ack: AckFrame) => {
      if (early) early.push(ack);
      else if (!ended) out.write(encodeFrame(ack));
    };
    // The sink may refuse (not the holder at storage, stale epoch, not a backup): only an accepted stream replaces the current one.
    const previous = [...sessions];
    const session = await opts.sink.open(hello, peerUrl, send);
    for (const s of previous) s.end('superseded by a new log stream');
    out.write(encodeFrame({ type: 'hello', epoch: hello.epoch, seq: session.heldSeq, vmId: opts.vmId, nodeId: opts.sink.nodeId }));
    for (const a of early) out.write(encodeFrame(a));
    early = undefined;
    const handle = {
      end(reason: string) {
        if (ended) return;
        ended = true;
        sessions.delete(handle);
        session.closed(reason);
        out.end();
        input.destroy();
      },
    };
    sessions.add(handle);
    pump(iter, decoder, session, rest, out, () => ended).then(
      (why) => handle.end(why),
      (err: Error) => {
        if (!ended) req.log.warn({ err: err.message, code: (err as { code?: string }).code }, 'log stream failed');
        handle.end(err.message);
      },
    );
    reply.header('content-type', 'application/octet-stream');
    if (opts.sink.selfUrl) reply.header('x-ft-peer-url', opts.sink.selfUrl);
    return reply.send(out);
  });
};
