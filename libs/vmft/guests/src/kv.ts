/**
 * Packet format of the `kv` guest (all integers little-endian, words 4-byte aligned).
 *
 * Request:
 *   u32 tag          host-assigned, echoed in the response (match answers to waiting clients)
 *   u8  op           1 get, 2 put, 3 incr, 4 append, 5 open session, 6 close session; 3 bytes padding
 *   u32 session      the session id (0: none, allowed for get only)          } absent for
 *   u32 seq          the request's number in its session, from 1              } open; close
 *   u32 ackBelow     the client has the answers to every seq below this one   } sends only
 *   u8  klen, klen bytes  key (UTF-8, <= 60 bytes)                            } the session
 *   u16 vlen, vlen bytes  value (UTF-8, <= 188 bytes; put/append; incr: optional decimal delta)
 *
 * Response:
 *   u32 tag, u8 status, u16 vlen, vlen bytes value. Statuses: 0 ok, 1 not found,
 *   2 bad request, 3 too large, 4 not a number, 5 table full, 6 session expired
 *   (or unknown), 7 seq already acknowledged, 8 too many outstanding requests.
 *   Open answers ok with the new session id in decimal.
 *
 * Semantics: get → the value (status 1 when missing); put → the new value;
 * append → the new value (a missing key counts as ""); incr → the new value in
 * decimal (a missing key counts as 0; 32-bit wrap-around).
 *
 * Exactly once (client sessions, Raft dissertation §6.3): a client opens a
 * session, numbers its requests 1, 2, 3, … and sends with each `ackBelow`, the
 * lowest seq whose answer it has not received yet. For every live session the
 * guest remembers the answers (status included) of the seqs in [mark, mark +
 * 8), where mark is the highest ackBelow it has seen; it forgets the rest.
 * - a retry of a remembered seq gets the remembered answer and is not applied again;
 * - a seq below the mark gets `seq-acked` and is not applied (the client said it has the answer);
 * - a seq at or beyond mark + 8 gets `too-many-outstanding` and is not applied
 *   (at most 8 unanswered requests per session);
 * - a request on an unknown, closed or expired session gets `session-expired`
 *   and is not applied.
 * At most 256 sessions live at once; opening one more expires the least
 * recently used session (a logical clock that counts requests orders them, so
 * primary and backup expire the same one). Session ids are `generation << 8 |
 * slot`; a slot's generation counts 1 … 2^24 - 1 and wraps, so an id comes back
 * only after 2^24 - 1 later sessions in the same slot. A session's seqs are u32.
 */
import { createError } from '@mr/errors';

export const ErrKvRequest = createError<[string]>('FT_ERR_KV_REQUEST', 'bad kv request: %s', 400);
export const ErrKvPacket = createError<[string]>('FT_ERR_KV_PACKET', 'bad kv packet: %s', 502);

export const KV_LIMITS = {
  maxKeyBytes: 60,
  maxValueBytes: 188,
  /** Live sessions; opening one more expires the least recently used. */
  maxSessions: 256,
  /** Unanswered (unacknowledged) requests per session: seq < ackBelow + maxOutstanding. */
  maxOutstanding: 8,
  maxSeq: 0xffffffff,
} as const;
export const KV_OPS = ['get', 'put', 'incr', 'append'] as const;
export type KvOp = (typeof KV_OPS)[number];
const OP_CODE = { get: 1, put: 2, incr: 3, append: 4, 'open-session': 5, 'close-session': 6 } as const;
const OP_NAMES = ['get', 'put', 'incr', 'append', 'open-session', 'close-session'] as const;
const HDR = 20;

export const KV_STATUSES = [
  'ok', 'not-found', 'bad-request', 'too-large', 'not-a-number', 'full', 'session-expired', 'seq-acked', 'too-many-outstanding',
] as const;
export type KvStatus = (typeof KV_STATUSES)[number];

/** A data request. `session` 0 (no session) is allowed for get only. */
export interface KvDataRequest {
  tag: number;
  op: KvOp;
  session: number;
  seq: number;
  ackBelow: number;
  key: string;
  value?: string;
}
export type KvRequest = KvDataRequest | { tag: number; op: 'open-session' } | { tag: number; op: 'close-session'; session: number };

export interface KvResponse {
  tag: number;
  status: KvStatus;
  /** The value; null when the status is not 'ok'. */
  value: string | null;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

const u32 = (name: string, v: number): void => {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw ErrKvRequest(`${name} ${v} is not a u32`);
};

/** Encodes a request; throws FT_ERR_KV_REQUEST (400) when a field is too long or out of range, or the op is unknown. */
export function encodeKvRequest(r: KvRequest): Uint8Array {
  const op = OP_CODE[r.op];
  if (op === undefined) throw ErrKvRequest(`unknown op "${String(r.op)}"`);
  u32('tag', r.tag);
  if (r.op === 'open-session') {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setUint32(0, r.tag, true);
    out[4] = op;
    return out;
  }
  u32('session', r.session);
  if (r.op === 'close-session') {
    const out = new Uint8Array(12);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, r.tag, true);
    out[4] = op;
    dv.setUint32(8, r.session, true);
    return out;
  }
  u32('seq', r.seq);
  u32('ackBelow', r.ackBelow);
  const k = enc.encode(r.key), v = enc.encode(r.value ?? '');
  if (k.length > KV_LIMITS.maxKeyBytes) throw ErrKvRequest(`key is ${k.length} bytes, at most ${KV_LIMITS.maxKeyBytes}`);
  if (v.length > KV_LIMITS.maxValueBytes) throw ErrKvRequest(`value is ${v.length} bytes, at most ${KV_LIMITS.maxValueBytes}`);
  const out = new Uint8Array(HDR + 1 + k.length + 2 + v.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, r.tag, true);
  out[4] = op;
  dv.setUint32(8, r.session, true);
  dv.setUint32(12, r.seq, true);
  dv.setUint32(16, r.ackBelow, true);
  let o = HDR;
  out[o++] = k.length; out.set(k, o); o += k.length;
  dv.setUint16(o, v.length, true); o += 2;
  out.set(v, o);
  return out;
}

/** Decodes a request packet (for logs and tests); throws FT_ERR_KV_PACKET on malformed bytes. */
export function decodeKvRequest(b: Uint8Array): KvRequest {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const need = (n: number): void => { if (o + n > b.length) throw ErrKvPacket(`request truncated at byte ${o}`); };
  need(5);
  const tag = dv.getUint32(0, true);
  const op = OP_NAMES[b[4]! - 1];
  if (op === undefined) throw ErrKvPacket(`unknown op ${b[4]}`);
  if (op === 'open-session') return { tag, op };
  o = 8;
  need(4);
  const session = dv.getUint32(8, true);
  if (op === 'close-session') return { tag, op, session };
  need(HDR - 8);
  const seq = dv.getUint32(12, true), ackBelow = dv.getUint32(16, true);
  o = HDR;
  need(1);
  const klen = b[o++]!;
  need(klen);
  const key = dec.decode(b.subarray(o, o + klen)); o += klen;
  need(2);
  const vlen = dv.getUint16(o, true); o += 2;
  need(vlen);
  const value = dec.decode(b.subarray(o, o + vlen));
  return { tag, op, session, seq, ackBelow, key, ...(vlen > 0 || op === 'put' || op === 'append' ? { value } : {}) };
}

/** Decodes a response packet from the guest; throws FT_ERR_KV_PACKET on malformed bytes. */
export function decodeKvResponse(b: Uint8Array): KvResponse {
  if (b.length < 7) throw ErrKvPacket(`response of ${b.length} bytes is too short`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = dv.getUint32(0, true);
  const status = KV_STATUSES[b[4]!];
  if (status === undefined) throw ErrKvPacket(`unknown status ${b[4]}`);
  const vlen = dv.getUint16(5, true);
  if (7 + vlen > b.length) throw ErrKvPacket('response value truncated');
  return { tag, status, value: status === 'ok' ? dec.decode(b.subarray(7, 7 + vlen)) : null };
}

/** The tag of any guest packet (first u32), or undefined when shorter than 4 bytes. */
export function packetTag(b: Uint8Array): number | undefined {
  if (b.length < 4) return undefined;
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
}
