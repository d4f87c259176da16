/**
 * OTLP/HTTP trace export requests (protobuf or JSON) to the dashboard's own
 * span records. Decoding is strict about shape (a bad payload is refused
 * whole, nothing is stored) and bounded in what it keeps: names, attribute
 * keys and values are truncated and attributes and events capped per span
 * (LIMITS in README), so a span's size in memory has a known bound.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { ERR_OTLP_BAD_PAYLOAD } from '../errors.ts';

export type AttrValue = string | number | boolean;

export interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  service: string;
  /** Which process of the service: resource service.instance.id, else "pid N" (process.pid). */
  instance?: string;
  /** Microseconds since the epoch (fits a double exactly for the next centuries). */
  startUs: number;
  endUs: number;
  attributes: Record<string, AttrValue>;
  events: { name: string; timeUs: number }[];
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message?: string };
}

export const SPAN_LIMITS = {
  nameChars: 256,
  attributes: 32,
  keyChars: 128,
  valueChars: 512,
  events: 16,
} as const;

const root = protobuf.parse(readFileSync(new URL('./otlp-trace.proto', import.meta.url), 'utf8'), { keepCase: false }).root;
const ExportRequest = root.lookupType('otlp.ExportTraceServiceRequest');
export const ExportResponse = root.lookupType('otlp.ExportTraceServiceResponse');

/** The decoded (not yet checked) shape shared by both encodings after toObject/JSON.parse. */
type Obj = Record<string, unknown>;

const HEX = /^[0-9a-f]*$/;

function fail(why: string): never {
  throw ERR_OTLP_BAD_PAYLOAD(why);
}

function arr(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(`${what} must be an array`);
  return v;
}

function obj(v: unknown, what: string): Obj {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail(`${what} must be an object`);
  return v as Obj;
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** An id: bytes (protobuf) or hex (JSON); `len` bytes; all zero counts as absent. */
function id(v: unknown, len: number, what: string, required: boolean): string | undefined {
  let hex: string;
  if (v instanceof Uint8Array) hex = Buffer.from(v).toString('hex');
  else if (typeof v === 'string') hex = v.toLowerCase();
  else if (v === undefined || v === null) hex = '';
  else fail(`${what} must be bytes or a hex string`);
  if (hex === '' || /^0+$/.test(hex)) {
    if (required) fail(`${what} is missing`);
    return undefined;
  }
  if (hex.length !== len * 2 || !HEX.test(hex)) fail(`${what} must be ${len} bytes (${len * 2} hex digits)`);
  return hex;
}

/** Nanoseconds (protobufjs Long, number or decimal string) to microseconds. */
function micros(v: unknown, what: string): number {
  if (v === undefined || v === null) fail(`${what} is missing`);
  let ns: bigint;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) fail(`${what} must be a non-negative number of nanoseconds`);
    ns = BigInt(Math.trunc(v));
  } else if (typeof v === 'string') {
    if (!/^\d{1,20}$/.test(v)) fail(`${what} must be a decimal number of nanoseconds`);
    ns = BigInt(v);
  } else if (typeof v === 'object' && v !== null && 'low' in v && 'high' in v) {
    const l = v as { low: number; high: number };
    ns = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
  } else fail(`${what} must be a number of nanoseconds`);
  return Number(ns / 1000n);
}

function anyValue(v: unknown): AttrValue {
  const o = obj(v, 'attribute value');
  if (typeof o['stringValue'] === 'string') return clip(o['stringValue'], SPAN_LIMITS.valueChars);
  if (typeof o['boolValue'] === 'boolean') return o['boolValue'];
  if (o['intValue'] !== undefined) {
    const iv = o['intValue'];
    if (typeof iv === 'number') return iv;
    if (typeof iv === 'string' && /^-?\d{1,20}$/.test(iv)) return Number(iv);
    fail('intValue must be an integer');
  }
  if (o['doubleValue'] !== undefined) {
    if (typeof o['doubleValue'] !== 'number') fail('doubleValue must be a number');
    return o['doubleValue'];
  }
  // Arrays, maps and bytes are kept as short text: the dashboard only shows them.
  if (o['arrayValue'] !== undefined || o['kvlistValue'] !== undefined) return clip(JSON.stringify(o['arrayValue'] ?? o['kvlistValue']), SPAN_LIMITS.valueChars);
  if (o['bytesValue'] !== undefined) return '(bytes)';
  return '';
}

function attributes(list: unknown, what: string): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = Object.create(null) as Record<string, AttrValue>;
  let n = 0;
  for (const kv of arr(list, what)) {
    const o = obj(kv, what);
    if (typeof o['key'] !== 'string') fail(`${what}: every attribute needs a string key`);
    const value = anyValue(o['value']);
    if (n >= SPAN_LIMITS.attributes) continue;
    out[clip(o['key'], SPAN_LIMITS.keyChars)] = value;
    n++;
  }
  return out;
}

function kindOf(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 5) return v;
  if (typeof v === 'string') {
    const names = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
    const i = names.indexOf(v);
    if (i >= 0) return i;
  }
  fail('span kind must be 0..5');
}

/** Spans of one export request, already decoded to plain objects (camelCase fields). */
function spansOf(req: Obj): SpanRecord[] {
  const out: SpanRecord[] = [];
  for (const rsRaw of arr(req['resourceSpans'], 'resourceSpans')) {
    const rs = obj(rsRaw, 'resourceSpans[]');
    const resAttrs = attributes(obj(rs['resource'], 'resource')['attributes'], 'resource.attributes');
    const service = typeof resAttrs['service.name'] === 'string' ? resAttrs['service.name'] : 'unknown_service';
    const inst = resAttrs['service.instance.id'] ?? (resAttrs['process.pid'] !== undefined ? `pid ${resAttrs['process.pid']}` : undefined);
    const instance = inst === undefined ? undefined : clip(String(inst), SPAN_LIMITS.keyChars);
    for (const ssRaw of arr(rs['scopeSpans'], 'scopeSpans')) {
      const ss = obj(ssRaw, 'scopeSpans[]');
      for (const spRaw of arr(ss['spans'], 'spans')) {
        const sp = obj(spRaw, 'span');
        if (typeof sp['name'] !== 'string' && sp['name'] !== undefined) fail('span name must be a string');
        const startUs = micros(sp['startTimeUnixNano'], 'startTimeUnixNano');
        const endUs = micros(sp['endTimeUnixNano'], 'endTimeUnixNano');
        const st = obj(sp['status'], 'status');
        const code = st['code'] === undefined ? 0 : st['code'] === 'STATUS_CODE_ERROR' ? 2 : st['code'] === 'STATUS_CODE_OK' ? 1 : st['code'];
        if (code !== 0 && code !== 1 && code !== 2) fail('status code must be 0, 1 or 2');
        const parent = id(sp['parentSpanId'], 8, 'parentSpanId', false);
        out.push({
          traceId: id(sp['traceId'], 16, 'traceId', true)!,
          spanId: id(sp['spanId'], 8, 'spanId', true)!,
          ...(parent ? { parentSpanId: parent } : {}),
          name: clip(typeof sp['name'] === 'string' ? sp['name'] : '', SPAN_LIMITS.nameChars),
          kind: kindOf(sp['kind']),
          service: clip(service, SPAN_LIMITS.keyChars),
          ...(instance !== undefined ? { instance } : {}),
          startUs,
          endUs: Math.max(endUs, startUs),
          attributes: attributes(sp['attributes'], 'span attributes'),
          events: arr(sp['events'], 'events')
            .slice(0, SPAN_LIMITS.events)
            .map((e) => {
              const eo = obj(e, 'event');
              return { name: clip(typeof eo['name'] === 'string' ? eo['name'] : '', SPAN_LIMITS.nameChars), timeUs: micros(eo['timeUnixNano'], 'event time') };
            }),
          status: { code, ...(typeof st['message'] === 'string' && st['message'] ? { message: clip(st['message'], SPAN_LIMITS.valueChars) } : {}) },
        });
      }
    }
  }
  return out;
}

/** Decodes a binary (application/x-protobuf) ExportTraceServiceRequest. */
export function decodeProtobuf(body: Uint8Array): SpanRecord[] {
  let msg: protobuf.Message;
  try {
    msg = ExportRequest.decode(body);
  } catch (err) {
    fail(`not an ExportTraceServiceRequest (${(err as Error).message})`);
  }
  return spansOf(ExportRequest.toObject(msg, { longs: String }) as Obj);
}

/** Decodes a JSON (application/json) ExportTraceServiceRequest (OTLP/JSON: hex ids, lowerCamelCase). */
export function decodeJson(body: unknown): SpanRecord[] {
  return spansOf(obj(body, 'the request'));
}

/** An estimate of a span's size in memory (bytes), for the store's byte bound. */
export function spanBytes(s: SpanRecord): number {
  let n = 200 + 2 * (s.name.length + s.service.length + (s.instance?.length ?? 0));
  for (const [k, v] of Object.entries(s.attributes)) n += 48 + 2 * k.length + (typeof v === 'string' ? 2 * v.length : 8);
  for (const e of s.events) n += 48 + 2 * e.name.length;
  if (s.status.message) n += 2 * s.status.message.length;
  return n;
}
