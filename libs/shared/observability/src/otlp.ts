/**
 * Reading OTLP/HTTP trace exports (what our exporters send): a decoder for
 * both encodings (application/x-protobuf and application/json) into flat
 * span records, and a small OTLP/HTTP receiver built on it (tests, and any
 * tool that wants to look at spans without a trace store).
 *
 * The protobuf schema is the subset of opentelemetry-proto's
 * collector/trace/v1 ExportTraceServiceRequest that spans need, with the
 * upstream field numbers; protobufjs decodes it.
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';
import { createError } from '@mr/errors';

export const ERR_BAD_OTLP = createError<[string]>('MR_ERR_BAD_OTLP', 'not an OTLP trace export: %s', 400, { retryable: false });

export type AttrValue = string | number | boolean | AttrValue[] | null;

export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  /** Unix time in ms (fractional: the export has ns). */
  startMs: number;
  endMs: number;
  attributes: Record<string, AttrValue>;
  events: { name: string; timeMs: number; attributes: Record<string, AttrValue> }[];
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message?: string };
  /** The resource's attributes (service.name, service.instance.id, …). */
  resource: Record<string, AttrValue>;
  scope: string;
}

const PROTO = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; fixed32 flags = 16;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Event events = 11; uint32 dropped_events_count = 12;
  repeated Link links = 13; uint32 dropped_links_count = 14; Status status = 15;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; uint32 dropped_attributes_count = 5; fixed32 flags = 6; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;

let requestType: protobuf.Type | undefined;
function exportRequest(): protobuf.Type {
  requestType ??= protobuf.parse(PROTO, { keepCase: false }).root.lookupType('otlp.ExportTraceServiceRequest');
  return requestType;
}

/** The wire shapes after protobufjs' toObject (longs and bytes as strings) or JSON.parse: the same field names. */
interface WireAny {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: WireAny[] };
  kvlistValue?: { values?: WireKv[] };
  bytesValue?: string;
}
interface WireKv {
  key: string;
  value?: WireAny;
}
interface WireSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: WireKv[];
  events?: { timeUnixNano?: string | number; name?: string; attributes?: WireKv[] }[];
  status?: { code?: number; message?: string };
}
interface WireRequest {
  resourceSpans?: { resource?: { attributes?: WireKv[] }; scopeSpans?: { scope?: { name?: string }; spans?: WireSpan[] }[] }[];
}

function anyValue(v: WireAny | undefined): AttrValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue) return JSON.stringify(attrs(v.kvlistValue.values));
  if (v.bytesValue !== undefined) return v.bytesValue;
  return null;
}

function attrs(kvs: WireKv[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of kvs ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

const nsToMs = (ns: string | number | undefined): number => {
  if (ns === undefined) return 0;
  const b = BigInt(ns);
  return Number(b / 1000n) / 1000;
};

function flatten(req: WireRequest, id: (s: string | undefined) => string): SpanRecord[] {
  const out: SpanRecord[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: id(s.traceId),
          spanId: id(s.spanId),
          parentSpanId: id(s.parentSpanId),
          name: s.name ?? '',
          kind: s.kind ?? 0,
          startMs: nsToMs(s.startTimeUnixNano),
          endMs: nsToMs(s.endTimeUnixNano),
          attributes: attrs(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name ?? '', timeMs: nsToMs(e.timeUnixNano), attributes: attrs(e.attributes) })),
          status: { code: s.status?.code ?? 0, ...(s.status?.message ? { message: s.status.message } : {}) },
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

/**
 * The spans of one OTLP/HTTP trace export body. `contentType` picks the
 * encoding: application/x-protobuf or application/json. Throws MR_ERR_BAD_OTLP.
 */
export function decodeTraceExport(body: Uint8Array, contentType: string | undefined): SpanRecord[] {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct === 'application/json') {
    let parsed: WireRequest;
    try {
      parsed = JSON.parse(Buffer.from(body).toString('utf8')) as WireRequest;
    } catch (err) {
      throw ERR_BAD_OTLP(`bad JSON: ${(err as Error).message}`);
    }
    // OTLP/JSON carries ids as hex strings already.
    return flatten(parsed, (s) => (s ?? '').toLowerCase());
  }
  if (ct === 'application/x-protobuf' || ct === 'application/protobuf') {
    let obj: WireRequest;
    try {
      const t = exportRequest();
      obj = t.toObject(t.decode(body), { longs: String, bytes: String, enums: Number, defaults: false }) as WireRequest;
    } catch (err) {
      throw ERR_BAD_OTLP(`bad protobuf: ${(err as Error).message}`);
    }
    return flatten(obj, (s) => (s ? Buffer.from(s, 'base64').toString('hex') : ''));
  }
  throw ERR_BAD_OTLP(`content-type ${ct || '(none)'}: expected application/x-protobuf or application/json`);
}

export interface OtlpReceiver {
  /** Base URL: use it as OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  /** Every span received so far, in arrival order. */
  spans: SpanRecord[];
  /** The content types of the exports received, in order. */
  contentTypes: string[];
  /** Resolves once `pred` holds for the spans received (or rejects after `ms`). */
  waitFor(what: string, pred: (spans: SpanRecord[]) => boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** An OTLP/HTTP receiver on 127.0.0.1 (POST /v1/traces, both encodings; at most 16 MiB a body). */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: SpanRecord[] = [];
  const contentTypes: string[] = [];
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.byteLength;
      if (size > 16 * 1024 * 1024) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const ct = req.headers['content-type'];
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      try {
        spans.push(...decodeTraceExport(Buffer.concat(chunks), ct));
        contentTypes.push(ct ?? '');
      } catch (err) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: (err as { code?: string }).code, message: (err as Error).message }));
        return;
      }
      for (const w of waiters) w();
      // An empty ExportTraceServiceResponse in the request's encoding.
      if ((ct ?? '').startsWith('application/json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    waitFor(what, pred, ms = 20_000) {
      if (pred(spans)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pred(spans)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`OTLP receiver: no ${what} within ${ms} ms; got ${spans.length} spans: ${[...new Set(spans.map((s) => s.name))].join(', ')}`));
        }, ms);
        waiters.add(check);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
