/**
 * The FT log channel: one long-lived HTTP/2 (h2c) stream from primary to
 * backup. Entries flow in the request body, acknowledgements in the response
 * body, both as @mr/vmft-protocol frames (binary, length-prefixed).
 *
 *   primary → backup:  hello(epoch, vmId, nodeId) [snapshot] entry entry …
 *   backup → primary:  hello(seq = highest contiguous seq held) ack ack …
 *
 * LogSender (primary side) keeps every entry until the backup acknowledges
 * it, so a broken stream is reopened and resent from the backup's hello seq
 * (nothing lost, nothing twice). Backpressure: at most inflightBytesMax bytes
 * are on the wire unacknowledged, and the request body's push() return value
 * is respected (the body's _read() resumes sending).
 *
 * registerLogReceiver (backup side) is a Fastify route: POST /v1/vms/:id/log.
 * The first frame must be a hello; anything malformed before it is answered
 * with a coded 4xx, anything malformed after it ends the stream (and is logged).
 */
import { Readable, PassThrough } from 'node:stream';
import { once } from 'node:events';
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import { H2CClient } from 'undici';
import { Type } from 'typebox';
import {
  FrameDecoder,
  encodeFrame,
  type AckFrame,
  type Frame,
  type HelloFrame,
} from '@mr/vmft-protocol';
import { ERR_BAD_LOG, ERR_UNKNOWN_VM } from './errors.ts';

export type ChannelState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface LogSenderOptions {
  /** Base URL of the backup (http://host:port). */
  url: string;
  vmId: string;
  nodeId: string;
  epoch: number;
  /** This node's own base URL, told to the backup so it can name the live node. */
  selfUrl?: string;
  token?: string | undefined;
  /** Bytes allowed on the wire without an acknowledgement (default 1 MiB). */
  inflightBytesMax?: number;
  /** Pause before reopening a broken stream (default 50 ms). */
  reconnectMs?: number;
  onAck(ack: AckFrame): void;
  onState?(state: ChannelState, detail?: string): void;
  /** Extra request headers for each stream (e.g. trace context). */
  headers?: () => Record<string, string>;
  log?: Pick<FastifyBaseLogger, 'info' | 'warn' | 'debug'>;
}

interface Queued {
  seq: number;
  bytes: Uint8Array;
}

/** Primary side of the log channel. */
export class LogSender {
  readonly opts: LogSenderOptions;
  #client: H2CClient;
  #queue: Queued[] = [];
  /** Index in #queue of the next entry to write on the current stream. */
  #next = 0;
  #inflight = 0;
  #queuedBytes = 0;
  #acked = 0;
  #sentSeq = 0;
  #body: Readable | undefined;
  #abort: AbortController | undefined;
  #handshaken = false;
  #state: ChannelState = 'disconnected';
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #snapshot: { seq: number; bytes: Uint8Array } | undefined;
  #bytesTotal = 0;
  #streams = 0;

  constructor(opts: LogSenderOptions) {
    if (!/^http:\/\//.test(opts.url)) throw new TypeError(`log channel: peer URL must be http:// (h2c), got ${opts.url}`);
    this.opts = { inflightBytesMax: 1024 * 1024, reconnectMs: 50, ...opts };
    this.#client = new H2CClient(new URL(opts.url).origin, {
      bodyTimeout: 0,
      headersTimeout: 0,
      connect: { timeout: 1000 },
    });
  }

  get state(): ChannelState {
    return this.#state;
  }
  /** Highest seq the backup has acknowledged. */
  get ackedSeq(): number {
    return this.#acked;
  }
  /** Highest seq written to a stream. */
  get sentSeq(): number {
    return this.#sentSeq;
  }
  /** Bytes of entries not yet acknowledged (sent or waiting). */
  get unackedBytes(): number {
    return this.#queuedBytes;
  }
  get bytesTotal(): number {
    return this.#bytesTotal;
  }
  get streams(): number {
    return this.#streams;
  }

  /**
   * Sends a snapshot (state transfer for a joining backup) before the entries
   * that follow it; resent on reconnect until the backup holds `seq`.
   */
  setSnapshot(seq: number, frame: Uint8Array): void {
    this.#snapshot = { seq, bytes: frame };
    if (this.#acked < seq) this.#acked = seq;
  }

  /** Queues one encoded entry frame; entries must come in seq order. */
  append(seq: number, frame: Uint8Array): void {
    if (this.#closed) return;
    const last = this.#queue.length ? this.#queue[this.#queue.length - 1]!.seq : this.#acked;
    if (seq <= last) throw new Error(`log channel: entry seq ${seq} after ${last}`);
    this.#queue.push({ seq, bytes: frame });
    this.#queuedBytes += frame.byteLength;
    this.#pump();
  }

  start(): void {
    if (this.#closed || this.#state === 'connecting' || this.#state === 'connected') return;
    this.#open();
  }

  #setState(s: ChannelState, detail?: string): void {
    if (this.#state === s) return;
    this.#state = s;
    this.opts.onState?.(s, detail);
  }

  #open(): void {
    this.#setState('connecting');
    this.#handshaken = false;
    this.#inflight = 0;
    this.#next = 0;
    const abort = new AbortController();
    this.#abort = abort;
    const body = new Readable({ read: () => this.#pump() });
    this.#body = body;
    this.#streams++;
    body.push(encodeFrame({ type: 'hello', epoch: this.opts.epoch, seq: this.#acked, vmId: this.opts.vmId, nodeId: this.opts.nodeId }));
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...(this.opts.headers?.() ?? {}) };
    if (this.opts.token) headers['authorization'] = `Bearer ${this.opts.token}`;
    if (this.opts.selfUrl) headers['x-ft-peer-url'] = this.opts.selfUrl;
    this.#client
      .request({ method: 'POST', path: `/v1/vms/${encodeURIComponent(this.opts.vmId)}/log`, headers, body, signal: abort.signal })
      .then(async (res) => {
        if (res.statusCode !== 200) {
          const text = await res.body.text().catch(() => '');
          throw new Error(`backup answered ${res.statusCode}: ${text.slice(0, 300)}`);
        }
        const decoder = new FrameDecoder();
        for await (const chunk of res.body) {
          for (const f of decoder.push(chunk as Uint8Array)) this.#onFrame(f);
        }
        throw new Error('backup ended the log stream');
      })
      .catch((err: Error) => {
        if (abort.signal.aborted && this.#abort !== abort) return;
        this.#broken(abort, err.message);
      });
  }

  #broken(abort: AbortController, why: string): void {
    if (this.#abort !== abort) return;
    abort.abort();
    this.#body?.destroy();
    this.#body = undefined;
    this.#abort = undefined;
    if (this.#closed) return;
    this.opts.log?.debug({ peer: this.opts.url, why }, 'log stream broken');
    this.#setState('disconnected', why);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) this.#open();
    }, this.opts.reconnectMs);
    this.#timer.unref();
  }

  #onFrame(f: Frame): void {
    if (f.type === 'hello') {
      // The backup holds every entry up to f.seq: resume after it.
      this.#ackUpTo(f.seq);
      this.#handshaken = true;
      this.#setState('connected');
      if (this.#snapshot && f.seq < this.#snapshot.seq) this.#write(this.#snapshot.bytes);
      this.#pump();
      return;
    }
    if (f.type === 'ack') {
      this.#ackUpTo(f.seq);
      this.opts.onAck(f);
      this.#pump();
      return;
    }
    throw ERR_BAD_LOG(`unexpected ${f.type} frame from the backup`);
  }

  #ackUpTo(seq: number): void {
    if (this.#snapshot && seq >= this.#snapshot.seq) this.#snapshot = undefined;
    if (seq <= this.#acked && (this.#queue.length === 0 || this.#queue[0]!.seq > seq)) return;
    let n = 0;
    while (n < this.#queue.length && this.#queue[n]!.seq <= seq) {
      const b = this.#queue[n]!.bytes.byteLength;
      this.#queuedBytes -= b;
      if (n < this.#next) this.#inflight -= b;
      n++;
    }
    if (n > 0) {
      this.#queue.splice(0, n);
      this.#next = Math.max(0, this.#next - n);
    }
    if (seq > this.#acked) this.#acked = seq;
    if (this.#inflight < 0) this.#inflight = 0;
  }

  #write(bytes: Uint8Array): boolean {
    this.#bytesTotal += bytes.byteLength;
    return this.#body!.push(bytes);
  }

  #pump(): void {
    if (!this.#handshaken || !this.#body) return;
    const max = this.opts.inflightBytesMax!;
    while (this.#next < this.#queue.length && this.#inflight < max) {
      const q = this.#queue[this.#next++]!;
      this.#inflight += q.bytes.byteLength;
      if (q.seq > this.#sentSeq) this.#sentSeq = q.seq;
      if (!this.#write(q.bytes)) break;
    }
  }

  /** Ends the stream (the backup sees a clean end) and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#body?.push(null);
    const abort = this.#abort;
    this.#setState('closed');
    await Promise.race([new Promise((r) => setTimeout(r, 200).unref()), Promise.resolve()]);
    abort?.abort();
    await this.#client.destroy().catch(() => {});
  }
}

// ------------------------------------------------------------------ receiver

/** One accepted log stream on the backup. */
export interface LogSession {
  /** Highest contiguous seq already held (the primary resends after it). */
  heldSeq: number;
  /** Frames after the hello (entries, snapshot); returns the ack to send, if any. */
  frames(frames: Frame[]): AckFrame | undefined;
  /** The stream ended or broke. */
  closed(reason: string): void;
}

export interface LogSink {
  /**
   * A primary opened a stream. Throw a coded error (e.g. 409 stale epoch, 409
   * not a backup) to refuse it; the previous session, if any, is already closed.
   */
  open(hello: HelloFrame, peerUrl: string | undefined): LogSession;
  nodeId: string;
}

export interface LogReceiverOptions {
  vmId: string;
  sink: LogSink;
  maxFrameBytes?: number;
}

/** Registers POST /v1/vms/:id/log on an http2 Fastify instance. */
export function registerLogReceiver(app: FastifyInstance, opts: LogReceiverOptions): { closeAll(): void; active(): number } {
  const sessions = new Set<{ end(reason: string): void }>();
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.post<{ Params: { id: string } }>('/v1/vms/:id/log', {
    schema: {
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }),
      headers: Type.Object({ 'content-type': Type.String({ pattern: '^application/octet-stream' }) }),
    },
  }, async (req, reply) => {
    if (req.params.id !== opts.vmId) throw ERR_UNKNOWN_VM(req.params.id);
    const input = req.body as Readable;
    const decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes });
    const iter = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
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
    if (hello.vmId !== opts.vmId) throw ERR_UNKNOWN_VM(hello.vmId);
    for (const s of [...sessions]) s.end('superseded by a new log stream');
    const peerUrl = typeof req.headers['x-ft-peer-url'] === 'string' ? req.headers['x-ft-peer-url'] : undefined;
    const session = opts.sink.open(hello, peerUrl);
    const out = new PassThrough();
    out.write(encodeFrame({ type: 'hello', epoch: hello.epoch, seq: session.heldSeq, vmId: opts.vmId, nodeId: opts.sink.nodeId }));
    let ended = false;
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
    const consume = async () => {
      const deliver = async (frames: Frame[]) => {
        if (ended || frames.length === 0) return;
        const ack = session.frames(frames);
        if (ack && !ended && !out.write(encodeFrame(ack))) await once(out, 'drain');
      };
      await deliver(pending);
      while (!ended) {
        const { value, done } = await iter.next();
        if (done) {
          decoder.end();
          return 'the primary ended the log stream';
        }
        await deliver(decoder.push(value));
      }
      return 'closed';
    };
    consume().then(
      (why) => handle.end(why),
      (err: Error) => {
        if (!ended) req.log.warn({ err: err.message, code: (err as { code?: string }).code }, 'log stream failed');
        handle.end(err.message);
      },
    );
    reply.header('content-type', 'application/octet-stream');
    return reply.send(out);
  });

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
