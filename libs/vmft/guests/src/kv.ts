/**
 * Packet format of the `kv` guest (all integers little-endian).
 *
 * Request:
 *   u32 tag          host-assigned, echoed in the response (match answers to waiting clients)
 *   u8  op           1 get, 2 put, 3 incr, 4 append
 *   u8  clen, clen bytes  client id (UTF-8)
 *   u8  rlen, rlen bytes  request id (UTF-8); clen + rlen <= 62
 *   u8  klen, klen bytes  key (UTF-8, <= 60 bytes)
 *   u16 vlen, vlen bytes  value (UTF-8, <= 188 bytes; put/append; incr: optional decimal delta)
 *
 * Response:
 *   u32 tag, u8 status (0 ok, 1 not found, 2 bad request, 3 too large, 4 not a number, 5 table full),
 *   u16 vlen, vlen bytes value.
 *
 * Semantics: get → the value (status 1 when missing); put → the new value;
 * append → the new value (a missing key counts as ""); incr → the new value in
 * decimal (a missing key counts as 0; 32-bit wrap-around). A request whose
 * (client id, request id) was seen before is answered with the remembered
 * response (status included) and not applied again. The guest remembers 1024
 * requests (open addressing, 16 probes); when the probed slots are all taken
 * it forgets the oldest of them, so recent requests are always remembered.
 */
import { createError } from '@mr/errors';

export const ErrKvRequest = createError<[string]>('FT_ERR_KV_REQUEST', 'bad kv request: %s', 400);
export const ErrKvPacket = createError<[string]>('FT_ERR_KV_PACKET', 'bad kv packet: %s', 502);

export const KV_LIMITS = { maxKeyBytes: 60, maxValueBytes: 188, maxIdBytes: 62 } as const;
export const KV_OPS = ['get', 'put', 'incr', 'append'] as const;
export type KvOp = (typeof KV_OPS)[number];
const OP_CODE: Record<KvOp, number> = { get: 1, put: 2, incr: 3, append: 4 };

export const KV_STATUSES = ['ok', 'not-found', 'bad-request', 'too-large', 'not-a-number', 'full'] as const;
export type KvStatus = (typeof KV_STATUSES)[number];

export interface KvRequest {
  tag: number;
  op: KvOp;
  clientId: string;
  requestId: string;
  key: string;
  value?: string;
}

export interface KvResponse {
  tag: number;
  status: KvStatus;
  /** The value; null when the status is not 'ok'. */
  value: string | null;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Encodes a request; throws FT_ERR_KV_REQUEST (400) when a field is too long or the op is unknown. */
export function encodeKvRequest(r: KvRequest): Uint8Array {
  const op = OP_CODE[r.op];
  if (op === undefined) throw ErrKvRequest(`unknown op "${String(r.op)}"`);
  if (!Number.isInteger(r.tag) || r.tag < 0 || r.tag > 0xffffffff) throw ErrKvRequest(`tag ${r.tag} is not a u32`);
  const c = enc.encode(r.clientId), q = enc.encode(r.requestId), k = enc.encode(r.key), v = enc.encode(r.value ?? '');
  if (c.length + q.length > KV_LIMITS.maxIdBytes) throw ErrKvRequest(`clientId + requestId are ${c.length + q.length} bytes, at most ${KV_LIMITS.maxIdBytes}`);
  if (k.length > KV_LIMITS.maxKeyBytes) throw ErrKvRequest(`key is ${k.length} bytes, at most ${KV_LIMITS.maxKeyBytes}`);
  if (v.length > KV_LIMITS.maxValueBytes) throw ErrKvRequest(`value is ${v.length} bytes, at most ${KV_LIMITS.maxValueBytes}`);
  const out = new Uint8Array(4 + 1 + 1 + c.length + 1 + q.length + 1 + k.length + 2 + v.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, r.tag, true);
  let o = 4;
  out[o++] = op;
  out[o++] = c.length; out.set(c, o); o += c.length;
  out[o++] = q.length; out.set(q, o); o += q.length;
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
  const opCode = b[4]!;
  o = 5;
  const str = (): string => { need(1); const n = b[o++]!; need(n); const s = dec.decode(b.subarray(o, o + n)); o += n; return s; };
  const clientId = str(), requestId = str(), key = str();
  need(2);
  const vlen = dv.getUint16(o, true); o += 2;
  need(vlen);
  const value = dec.decode(b.subarray(o, o + vlen));
  const op = KV_OPS[opCode - 1];
  if (op === undefined) throw ErrKvPacket(`unknown op ${opCode}`);
  return { tag, op, clientId, requestId, key, ...(vlen > 0 || op === 'put' || op === 'append' ? { value } : {}) };
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
