/**
 * Binary, length-prefixed codec for the log channel.
 *
 *   frame   := u32be bodyLength | body          (bodyLength >= 1)
 *   body    := u8 type | fields
 *   entry   (type 1) := u8 kind | u64 seq | u64 icount | payload
 *     interrupt (1): u32 vector
 *     nic       (2): packet bytes (the rest of the body)
 *     disk      (3): u32 reqId | data bytes (the rest)
 *     clock     (4): u64 value
 *     random    (5): u32 value
 *     progress  (6): (nothing)
 *     port      (7): u32 port | u32 value
 *   ack     (type 2) := u32 epoch | u64 seq | u64 icount [| u64 cpSeq | u64 cpIcount | u8 len | hash utf8]
 *                       (the optional checkpoint: the backup's state hash at log seq cpSeq)
 *   hello   (type 3) := u32 epoch | u64 seq | u16 len | vmId utf8 | u16 len | nodeId utf8
 *   snapshot(type 4) := u32 epoch | u64 seq | u64 icount | state bytes (the rest)
 *   trace   (type 5) := u64 seq | 16 bytes trace id | 8 bytes span id | u8 flags
 *
 * All integers are big-endian; u64 fields carry safe integers (< 2^53).
 * The decoder accepts any chunking of the byte stream, in time linear in its
 * length, and rejects anything malformed with a coded error (FT_ERR_BAD_FRAME,
 * FT_ERR_FRAME_TOO_LARGE, FT_ERR_TRUNCATED); after an error it stays failed
 * (close the stream). Limits: entry/ack/hello bodies at most
 * MAX_LOG_FRAME_BYTES (2 MiB), snapshot bodies at most
 * MAX_SNAPSHOT_FRAME_BYTES (64 MiB), each configurable per decoder.
 */
import { FT_ERR_BAD_FRAME, FT_ERR_BAD_VALUE, FT_ERR_FRAME_TOO_LARGE, FT_ERR_TRUNCATED } from './errors.ts';
import { MAX_CHECKPOINT_HASH_BYTES, type Frame, type LogEntry } from './frames.ts';

const T_ENTRY = 1, T_ACK = 2, T_HELLO = 3, T_SNAPSHOT = 4, T_TRACE = 5;
const TRACE_BODY = 1 + 8 + 16 + 8 + 1;
const KIND_CODE = { interrupt: 1, nic: 2, disk: 3, clock: 4, random: 5, progress: 6, port: 7 } as const;
const CODE_KIND = ['', 'interrupt', 'nic', 'disk', 'clock', 'random', 'progress', 'port'] as const;
const ENTRY_HEAD = 1 + 1 + 8 + 8;
const TWO32 = 4294967296;

/**
 * Default cap on the body of one small frame: an entry, ack or hello. The
 * largest legitimate one is a disk-read entry, at most the guest's memory
 * (1 MiB by default) plus its 22-byte head.
 */
export const MAX_LOG_FRAME_BYTES = 2 * 1024 * 1024;
/** Default cap on the body of one snapshot frame (state transfer: the machine's state, 1 MiB memory by default). */
export const MAX_SNAPSHOT_FRAME_BYTES = 64 * 1024 * 1024;
/** Cap on vmId / nodeId in a hello frame. */
export const MAX_ID_BYTES = 256;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= TWO32) throw FT_ERR_BAD_VALUE(`${name}=${v} is not a u32`);
}
function checkU64(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw FT_ERR_BAD_VALUE(`${name}=${v} is not a non-negative safe integer`);
}
function putU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, Math.floor(v / TWO32));
  dv.setUint32(at + 4, v >>> 0);
}
function getU64(dv: DataView, at: number, name: string): number {
  const hi = dv.getUint32(at);
  if (hi >= 1 << 21) throw FT_ERR_BAD_FRAME(`${name} exceeds 2^53`);
  return hi * TWO32 + dv.getUint32(at + 4);
}

/** Body size of a frame's encoding (without the 4-byte prefix). */
function bodySize(f: Frame, ids?: { vm: Uint8Array; node: Uint8Array }): number {
  switch (f.type) {
    case 'entry': {
      const e = f.entry;
      switch (e.kind) {
        case 'interrupt':
        case 'random':
          return ENTRY_HEAD + 4;
        case 'clock':
        case 'port':
          return ENTRY_HEAD + 8;
        case 'progress':
          return ENTRY_HEAD;
        case 'nic':
          return ENTRY_HEAD + e.packet.byteLength;
        case 'disk':
          return ENTRY_HEAD + 4 + e.data.byteLength;
      }
      throw FT_ERR_BAD_VALUE(`unknown entry kind ${(e as { kind: string }).kind}`);
    }
    case 'ack':
      return 1 + 4 + 8 + 8 + (f.checkpoint ? 8 + 8 + 1 + utf8.encode(f.checkpoint.hash).byteLength : 0);
    case 'hello':
      return 1 + 4 + 8 + 2 + ids!.vm.byteLength + 2 + ids!.node.byteLength;
    case 'snapshot':
      return 1 + 4 + 8 + 8 + f.state.byteLength;
    case 'trace':
      return TRACE_BODY;
  }
  throw FT_ERR_BAD_VALUE(`unknown frame type ${(f as { type: string }).type}`);
}

/** Bytes one entry takes on the wire, prefix included (for byte accounting and limits). */
export function entryWireSize(e: LogEntry): number {
  return 4 + bodySize({ type: 'entry', entry: e });
}

/** Encodes one frame, length prefix included. Throws FT_ERR_BAD_VALUE for out-of-range fields. */
export function encodeFrame(f: Frame): Uint8Array {
  let ids: { vm: Uint8Array; node: Uint8Array } | undefined;
  if (f.type === 'hello') {
    ids = { vm: utf8.encode(f.vmId), node: utf8.encode(f.nodeId) };
    if (ids.vm.byteLength > MAX_ID_BYTES || ids.node.byteLength > MAX_ID_BYTES) throw FT_ERR_BAD_VALUE('hello id too long');
  }
  const size = bodySize(f, ids);
  const out = new Uint8Array(4 + size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, size);
  let p = 4;
  switch (f.type) {
    case 'entry': {
      const e = f.entry;
      checkU64('seq', e.seq);
      checkU64('icount', e.icount);
      out[p++] = T_ENTRY;
      out[p++] = KIND_CODE[e.kind];
      putU64(dv, p, e.seq);
      putU64(dv, p + 8, e.icount);
      p += 16;
      switch (e.kind) {
        case 'interrupt':
          checkU32('vector', e.vector);
          dv.setUint32(p, e.vector);
          break;
        case 'random':
          checkU32('value', e.value);
          dv.setUint32(p, e.value);
          break;
        case 'clock':
          checkU64('value', e.value);
          putU64(dv, p, e.value);
          break;
        case 'nic':
          out.set(e.packet, p);
          break;
        case 'disk':
          checkU32('reqId', e.reqId);
          dv.setUint32(p, e.reqId);
          out.set(e.data, p + 4);
          break;
        case 'port':
          checkU32('port', e.port);
          checkU32('value', e.value);
          dv.setUint32(p, e.port);
          dv.setUint32(p + 4, e.value);
          break;
        case 'progress':
          break;
      }
      break;
    }
    case 'ack':
      checkU32('epoch', f.epoch);
      checkU64('seq', f.seq);
      checkU64('icount', f.icount);
      out[p++] = T_ACK;
      dv.setUint32(p, f.epoch);
      putU64(dv, p + 4, f.seq);
      putU64(dv, p + 12, f.icount);
      if (f.checkpoint) {
        const h = utf8.encode(f.checkpoint.hash);
        checkU64('checkpoint seq', f.checkpoint.seq);
        checkU64('checkpoint icount', f.checkpoint.icount);
        if (h.byteLength > MAX_CHECKPOINT_HASH_BYTES) throw FT_ERR_BAD_VALUE(`checkpoint hash of ${h.byteLength} bytes (at most ${MAX_CHECKPOINT_HASH_BYTES})`);
        putU64(dv, p + 20, f.checkpoint.seq);
        putU64(dv, p + 28, f.checkpoint.icount);
        out[p + 36] = h.byteLength;
        out.set(h, p + 37);
      }
      break;
    case 'hello':
      checkU32('epoch', f.epoch);
      checkU64('seq', f.seq);
      out[p++] = T_HELLO;
      dv.setUint32(p, f.epoch);
      putU64(dv, p + 4, f.seq);
      p += 12;
      dv.setUint16(p, ids!.vm.byteLength);
      out.set(ids!.vm, p + 2);
      p += 2 + ids!.vm.byteLength;
      dv.setUint16(p, ids!.node.byteLength);
      out.set(ids!.node, p + 2);
      break;
    case 'snapshot':
      checkU32('epoch', f.epoch);
      checkU64('seq', f.seq);
      checkU64('icount', f.icount);
      out[p++] = T_SNAPSHOT;
      dv.setUint32(p, f.epoch);
      putU64(dv, p + 4, f.seq);
      putU64(dv, p + 12, f.icount);
      out.set(f.state, p + 20);
      break;
    case 'trace':
      checkU64('seq', f.seq);
      if (!/^[0-9a-f]{32}$/.test(f.traceId) || /^0+$/.test(f.traceId)) throw FT_ERR_BAD_VALUE(`trace id ${f.traceId} is not 32 hex digits (not all zero)`);
      if (!/^[0-9a-f]{16}$/.test(f.spanId) || /^0+$/.test(f.spanId)) throw FT_ERR_BAD_VALUE(`span id ${f.spanId} is not 16 hex digits (not all zero)`);
      checkU32('flags', f.flags);
      if (f.flags > 0xff) throw FT_ERR_BAD_VALUE(`trace flags ${f.flags} exceed a byte`);
      out[p++] = T_TRACE;
      putU64(dv, p, f.seq);
      out.set(Buffer.from(f.traceId, 'hex'), p + 8);
      out.set(Buffer.from(f.spanId, 'hex'), p + 24);
      out[p + 32] = f.flags;
      break;
  }
  return out;
}

/** Encodes several frames into one buffer. */
export function encodeFrames(frames: readonly Frame[]): Uint8Array {
  const parts = frames.map(encodeFrame);
  const out = new Uint8Array(parts.reduce((n, b) => n + b.byteLength, 0));
  let p = 0;
  for (const b of parts) {
    out.set(b, p);
    p += b.byteLength;
  }
  return out;
}

function need(len: number, want: number, what: string): void {
  if (len !== want) throw FT_ERR_BAD_FRAME(`${what} body is ${len} bytes, expected ${want}`);
}
function atLeast(len: number, want: number, what: string): void {
  if (len < want) throw FT_ERR_BAD_FRAME(`${what} body is ${len} bytes, expected at least ${want}`);
}

/** Decodes one frame body (without its prefix). Throws coded errors only. */
export function decodeBody(body: Uint8Array): Frame {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const len = body.byteLength;
  if (len < 1) throw FT_ERR_BAD_FRAME('empty frame');
  switch (body[0]) {
    case T_ENTRY: {
      atLeast(len, ENTRY_HEAD, 'entry');
      const code = body[1]!;
      const kind = CODE_KIND[code];
      if (!kind) throw FT_ERR_BAD_FRAME(`unknown entry kind ${code}`);
      const seq = getU64(dv, 2, 'seq');
      const icount = getU64(dv, 10, 'icount');
      const p = ENTRY_HEAD;
      let entry: LogEntry;
      switch (kind) {
        case 'interrupt':
          need(len, p + 4, 'interrupt entry');
          entry = { kind, seq, icount, vector: dv.getUint32(p) };
          break;
        case 'random':
          need(len, p + 4, 'random entry');
          entry = { kind, seq, icount, value: dv.getUint32(p) };
          break;
        case 'clock':
          need(len, p + 8, 'clock entry');
          entry = { kind, seq, icount, value: getU64(dv, p, 'clock value') };
          break;
        case 'port':
          need(len, p + 8, 'port entry');
          entry = { kind, seq, icount, port: dv.getUint32(p), value: dv.getUint32(p + 4) };
          break;
        case 'progress':
          need(len, p, 'progress entry');
          entry = { kind, seq, icount };
          break;
        case 'nic':
          entry = { kind, seq, icount, packet: body.slice(p) };
          break;
        case 'disk':
          atLeast(len, p + 4, 'disk entry');
          entry = { kind, seq, icount, reqId: dv.getUint32(p), data: body.slice(p + 4) };
          break;
      }
      return { type: 'entry', entry };
    }
    case T_ACK: {
      const ack = { type: 'ack' as const, epoch: 0, seq: 0, icount: 0 };
      if (len === 21) return { ...ack, epoch: dv.getUint32(1), seq: getU64(dv, 5, 'seq'), icount: getU64(dv, 13, 'icount') };
      atLeast(len, 38, 'ack with a checkpoint');
      const hashLen = body[37]!;
      need(len, 38 + hashLen, 'ack with a checkpoint');
      if (hashLen > MAX_CHECKPOINT_HASH_BYTES) throw FT_ERR_BAD_FRAME(`ack checkpoint hash of ${hashLen} bytes (at most ${MAX_CHECKPOINT_HASH_BYTES})`);
      let hash: string;
      try {
        hash = utf8Strict.decode(body.subarray(38, 38 + hashLen));
      } catch {
        throw FT_ERR_BAD_FRAME('ack checkpoint hash is not UTF-8');
      }
      return {
        ...ack,
        epoch: dv.getUint32(1),
        seq: getU64(dv, 5, 'seq'),
        icount: getU64(dv, 13, 'icount'),
        checkpoint: { seq: getU64(dv, 21, 'checkpoint seq'), icount: getU64(dv, 29, 'checkpoint icount'), hash },
      };
    }
    case T_HELLO: {
      atLeast(len, 15, 'hello');
      const epoch = dv.getUint32(1);
      const seq = getU64(dv, 5, 'seq');
      let p = 13;
      const vmLen = dv.getUint16(p);
      p += 2;
      if (vmLen > MAX_ID_BYTES) throw FT_ERR_BAD_FRAME('hello vmId too long');
      atLeast(len, p + vmLen + 2, 'hello');
      const vmId = text(body.subarray(p, p + vmLen));
      p += vmLen;
      const nodeLen = dv.getUint16(p);
      p += 2;
      if (nodeLen > MAX_ID_BYTES) throw FT_ERR_BAD_FRAME('hello nodeId too long');
      need(len, p + nodeLen, 'hello');
      const nodeId = text(body.subarray(p, p + nodeLen));
      return { type: 'hello', epoch, seq, vmId, nodeId };
    }
    case T_SNAPSHOT:
      atLeast(len, 21, 'snapshot');
      return {
        type: 'snapshot',
        epoch: dv.getUint32(1),
        seq: getU64(dv, 5, 'seq'),
        icount: getU64(dv, 13, 'icount'),
        state: body.slice(21),
      };
    case T_TRACE: {
      need(len, TRACE_BODY, 'trace');
      const traceId = hex(body.subarray(9, 25));
      const spanId = hex(body.subarray(25, 33));
      if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) throw FT_ERR_BAD_FRAME('trace frame with an all-zero id');
      return { type: 'trace', seq: getU64(dv, 1, 'seq'), traceId, spanId, flags: body[33]! };
    }
    default:
      throw FT_ERR_BAD_FRAME(`unknown frame type ${body[0]}`);
  }
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function text(b: Uint8Array): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw FT_ERR_BAD_FRAME('invalid utf-8 in hello');
  }
}

/** Limits of a FrameDecoder: declared lengths above them are refused before any of the body is buffered. */
export interface FrameLimits {
  /** Largest body of an entry, ack or hello frame (default MAX_LOG_FRAME_BYTES). */
  maxFrameBytes?: number | undefined;
  /** Largest body of a snapshot frame (default MAX_SNAPSHOT_FRAME_BYTES; 0 refuses every snapshot frame). */
  maxSnapshotBytes?: number | undefined;
}

/** Decodes a buffer holding whole frames only (e.g. a test fixture). */
export function decodeFrames(bytes: Uint8Array, opts: FrameLimits = {}): Frame[] {
  const d = new FrameDecoder(opts);
  const out = d.push(bytes);
  d.end();
  return out;
}

/**
 * Incremental decoder: push() any chunk of the stream, get the frames it
 * completed. Malformed input throws a coded error and poisons the decoder.
 *
 * Linear in the bytes pushed, however they are chunked: whole frames inside a
 * chunk are decoded in place; the rest of a chunk is copied once into a queue,
 * and a frame spread over several chunks is assembled once, when its last byte
 * has arrived (every byte is copied at most twice: see bytesCopied). A frame's
 * declared length is checked against the limit of its type as soon as the
 * length and type bytes are in: an oversized frame is refused before its body
 * is buffered. Snapshot frames (state transfer) have their own, larger limit.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  readonly maxSnapshotBytes: number;
  /** Received bytes not yet part of a complete frame, oldest first (private copies). */
  #queue: Uint8Array[] = [];
  #pending = 0;
  /** Body length of the frame being received, once its head (length + type) was checked; 0 before. */
  #need = 0;
  #error: Error | undefined;
  #bytes = 0;
  #copied = 0;

  constructor(opts: FrameLimits = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_LOG_FRAME_BYTES;
    this.maxSnapshotBytes = opts.maxSnapshotBytes ?? MAX_SNAPSHOT_FRAME_BYTES;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pending(): number {
    return this.#pending;
  }
  /** Total bytes pushed. */
  get bytes(): number {
    return this.#bytes;
  }
  /** Bytes copied so far (the decoder's work beyond reading each byte once): at most twice the bytes pushed. */
  get bytesCopied(): number {
    return this.#copied;
  }

  push(chunk: Uint8Array): Frame[] {
    if (this.#error) throw this.#error;
    this.#bytes += chunk.byteLength;
    const frames: Frame[] = [];
    try {
      let p = 0;
      if (this.#pending === 0) {
        // Whole frames straight from the chunk, without copying.
        while (chunk.byteLength - p >= 5) {
          const size = u32(chunk, p);
          this.#check(size, chunk[p + 4]!);
          if (chunk.byteLength - p - 4 < size) break;
          frames.push(decodeBody(chunk.subarray(p + 4, p + 4 + size)));
          p += 4 + size;
        }
      }
      if (p < chunk.byteLength) {
        // Keep the rest, copied so the caller's chunk may be reused.
        this.#queue.push(chunk.slice(p));
        this.#pending += chunk.byteLength - p;
        this.#copied += chunk.byteLength - p;
        this.#drain(frames);
      }
    } catch (err) {
      this.#error = err as Error;
      this.#queue = [];
      this.#pending = 0;
      throw err;
    }
    return frames;
  }

  /** Checks a frame's declared body length against the limit of its type (byte 0 of the body). */
  #check(size: number, type: number): void {
    if (size === 0) throw FT_ERR_BAD_FRAME('empty frame');
    const max = type === T_SNAPSHOT ? this.maxSnapshotBytes : this.maxFrameBytes;
    if (size > max) throw FT_ERR_FRAME_TOO_LARGE(size, max);
  }

  /** Decodes every frame the queue completes. */
  #drain(frames: Frame[]): void {
    for (;;) {
      if (this.#need === 0) {
        if (this.#pending < 4) return;
        const head = this.#peek(5);
        const size = u32(head, 0);
        if (size === 0) throw FT_ERR_BAD_FRAME('empty frame');
        // Refused on the length alone when no type could allow it.
        if (size > Math.max(this.maxFrameBytes, this.maxSnapshotBytes)) throw FT_ERR_FRAME_TOO_LARGE(size, Math.max(this.maxFrameBytes, this.maxSnapshotBytes));
        if (head.byteLength < 5) return;
        this.#check(size, head[4]!);
        this.#need = size;
      }
      if (this.#pending < 4 + this.#need) return;
      const frame = this.#take(4 + this.#need);
      this.#need = 0;
      frames.push(decodeBody(frame.subarray(4)));
    }
  }

  /** The first min(n, pending) queued bytes (n is small: a frame head). */
  #peek(n: number): Uint8Array {
    const first = this.#queue[0]!;
    if (first.byteLength >= n) return first.subarray(0, n);
    const out = new Uint8Array(Math.min(n, this.#pending));
    let at = 0;
    for (const c of this.#queue) {
      const k = Math.min(c.byteLength, out.byteLength - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (at === out.byteLength) break;
    }
    return out;
  }

  /** Removes the first n queued bytes (n <= pending), in one piece: assembled once if they span chunks. */
  #take(n: number): Uint8Array {
    this.#pending -= n;
    const first = this.#queue[0]!;
    if (first.byteLength >= n) {
      if (first.byteLength === n) this.#queue.shift();
      else this.#queue[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    let used = 0;
    while (at < n) {
      const c = this.#queue[used]!;
      const k = Math.min(c.byteLength, n - at);
      out.set(k === c.byteLength ? c : c.subarray(0, k), at);
      at += k;
      if (k === c.byteLength) used++;
      else this.#queue[used] = c.subarray(k);
    }
    this.#queue.splice(0, used);
    this.#copied += n;
    return out;
  }

  /** The stream ended: throws FT_ERR_TRUNCATED if it ended inside a frame. */
  end(): void {
    if (this.#error) throw this.#error;
    if (this.#pending > 0) {
      this.#error = FT_ERR_TRUNCATED(this.#pending);
      throw this.#error;
    }
  }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}
