/**
 * The FT log channel, primary side: one long-lived HTTP/2 (h2c) stream from
 * primary to backup. Entries flow in the request body, acknowledgements in the response
 * body, both as @mr/vmft-protocol frames (binary, length-prefixed).
 *
 *   primary → backup:  hello(epoch, acked seq, vmId, nodeId) [snapshot] entry entry …
 *   backup → primary:  hello(seq = highest contiguous seq held) ack ack …
 *
 * The transport is deliberately dumb about the log: the FT core keeps every
 * unacknowledged entry and re-emits them after `link-up` (the backup's hello
 * says where to resume), so a broken stream loses nothing and an entry the
 * backup holds is not sent twice. LogSender reopens a broken stream after
 * reconnectMs, reports each hello/ack/state change, and drops what is sent
 * while no stream is up (the core resends it). Backpressure: the request
 * body's push() return value is respected; what does not fit waits in a
 * local queue that the body's _read() drains, and the core bounds the total
 * (maxUnackedBytes stalls the primary). Frames sent in one go (one turn of the
 * event loop: a client packet's entry and the guest's run after it) leave in
 * one write, at the end of the turn (a microtask).
 *
 * The backup side is the route in ../routes/log.ts. The sender carries the
 * peer credential (MR_PEER_TOKEN) to the one configured URL it was built for.
 */
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { FastifyBaseLogger } from 'fastify';
import { H2CClient } from 'undici';
import { FrameDecoder, encodeFrame, type AckFrame, type Frame, type HelloFrame } from '@mr/vmft-protocol';
import { ERR_BAD_LOG } from '../errors.ts';

/** Frames of one turn are written together up to this many bytes. */
const MAX_BATCH_BYTES = 64 * 1024;

export type ChannelState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface LogSenderOptions {
  /** Base URL of the backup (http://host:port). */
  url: string;
  vmId: string;
  /** The hello frame to open each stream with (the core's hello()). */
  hello: () => HelloFrame;
  /** This node's own base URL, told to the backup so it can name the live node. */
  selfUrl?: string;
  token?: string | undefined;
  /** Pause before reopening a broken stream (default 50 ms). */
  reconnectMs?: number;
  /** close() waits at most this long for the backup to take the rest of the stream (default 1000 ms). */
  closeTimeoutMs?: number;
  /** The backup's hello arrived: the stream is up (drive `link-up`, or `join`). */
  onHello(hello: HelloFrame): void;
  onAck(ack: AckFrame): void;
  /** The backup's own URL, as it announces it (the address clients should use for it). */
  onPeerUrl?(url: string): void;
  /** State changes; 'disconnected' means the stream broke (drive `link-down`). */
  onState?(state: ChannelState, detail?: string): void;
  /** Extra request headers for each stream (e.g. trace context). */
  headers?: () => Record<string, string>;
  log?: Pick<FastifyBaseLogger, 'info' | 'warn' | 'debug'>;
}

/** Primary side of the log channel. */
export class LogSender {
  readonly opts: LogSenderOptions;
  #client: H2CClient;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Frames sent since the last flush (one write at the end of this turn), and the stream they are for. */
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #batchFor: AbortController | undefined;
  #body: Readable | undefined;
  #abort: AbortController | undefined;
  #handshaken = false;
  #state: ChannelState = 'disconnected';
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #bytesTotal = 0;
  #streams = 0;

  constructor(opts: LogSenderOptions) {
    if (!/^http:\/\//.test(opts.url)) throw new TypeError(`log channel: peer URL must be http:// (h2c), got ${opts.url}`);
    this.opts = { reconnectMs: 50, ...opts };
    this.#client = new H2CClient(new URL(opts.url).origin, {
      bodyTimeout: 0,
      headersTimeout: 0,
      connect: { timeout: 1000 },
    });
  }

  get state(): ChannelState {
    return this.#state;
  }
  /** True while a stream is open and the backup's hello has arrived. */
  get up(): boolean {
    return this.#handshaken && this.#body !== undefined;
  }
  /** Bytes waiting for the stream to take them (backpressure). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }
  /** Bytes handed to streams, hellos included. */
  get bytesTotal(): number {
    return this.#bytesTotal;
  }
  /** Streams opened so far. */
  get streams(): number {
    return this.#streams;
  }

  /** Sends an encoded frame on the open stream; dropped (false) when none is up: the core resends after link-up. */
  send(frame: Uint8Array): boolean {
    if (!this.up) return false;
    if (this.#batch.length === 0) {
      this.#batchFor = this.#abort;
      queueMicrotask(() => this.#flush());
    }
    this.#batch.push(frame);
    this.#batchBytes += frame.byteLength;
    // A big batch goes now, so that the body's backpressure still applies to a burst.
    if (this.#batchBytes >= MAX_BATCH_BYTES) this.#flush();
    return true;
  }

  /** Writes the frames sent this turn as one chunk (dropped if their stream broke meanwhile: the core resends). */
  #flush(): void {
    const parts = this.#batch;
    if (parts.length === 0) return;
    this.#batch = [];
    this.#batchBytes = 0;
    if (!this.up || this.#abort !== this.#batchFor) return;
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (this.#blocked) {
      this.#pending.push(bytes);
      this.#pendingBytes += bytes.byteLength;
    } else this.#write(bytes);
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

  /** The body's buffer is full (push() returned false) until it asks for more. */
  #blocked = false;

  #write(bytes: Uint8Array): void {
    this.#bytesTotal += bytes.byteLength;
    if (!this.#body!.push(bytes)) this.#blocked = true;
  }

  #drain(): void {
    this.#blocked = false;
    while (this.#body && !this.#blocked && this.#pending.length > 0) {
      const f = this.#pending.shift()!;
      this.#pendingBytes -= f.byteLength;
      this.#write(f);
    }
  }

  #open(): void {
    this.#setState('connecting');
    this.#handshaken = false;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#blocked = false;
    const abort = new AbortController();
    this.#abort = abort;
    const body = new Readable({ read: () => this.#drain() });
    this.#body = body;
    this.#streams++;
    this.#write(encodeFrame(this.opts.hello()));
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
        const peer = res.headers['x-ft-peer-url'];
        if (typeof peer === 'string' && /^https?:\/\/[^/\s]+$/.test(peer)) this.opts.onPeerUrl?.(peer);
        const decoder = new FrameDecoder();
        for await (const chunk of res.body) {
          if (this.#abort !== abort) return;
          for (const f of decoder.push(chunk as Uint8Array)) this.#onFrame(f);
        }
        throw new Error('backup ended the log stream');
      })
      .catch((err: Error) => this.#broken(abort, err.message));
  }

  #broken(abort: AbortController, why: string): void {
    if (this.#abort !== abort) return;
    abort.abort();
    this.#body?.destroy();
    this.#body = undefined;
    this.#abort = undefined;
    this.#handshaken = false;
    this.#pending = [];
    this.#pendingBytes = 0;
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
      if (this.#handshaken) throw ERR_BAD_LOG('a second hello from the backup');
      this.#handshaken = true;
      this.#setState('connected');
      this.opts.onHello(f);
      return;
    }
    if (f.type === 'ack') {
      if (!this.#handshaken) throw ERR_BAD_LOG('an ack before the hello');
      this.opts.onAck(f);
      return;
    }
    throw ERR_BAD_LOG(`unexpected ${f.type} frame from the backup`);
  }

  /** Ends the stream (the backup sees a clean end) and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#flush();
    const body = this.#body;
    const clean = body !== undefined && this.#pending.length === 0;
    const abort = this.#abort;
    this.#abort = undefined;
    this.#body = undefined;
    this.#setState('closed');
    if (clean) {
      // A clean end: the backup reads every frame, then sees the end of the stream.
      body.push(null);
      const bounded = new Promise<void>((r) => setTimeout(r, this.opts.closeTimeoutMs ?? 1000).unref());
      await Promise.race([finished(body).catch(() => {}), bounded]);
    }
    abort?.abort();
    await this.#client.destroy().catch(() => {});
  }
}
