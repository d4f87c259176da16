/**
 * The kv guest's client request table: NIC tags, per-request timeouts,
 * decoding the guest's answers, and rejecting what is still waiting when the
 * node stops. The driver owns when a request may enter (live, accepting);
 * this table owns what happens to it afterwards.
 */
import { randomInt } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { context, trace, type Span } from '@opentelemetry/api';
import { isSampled, tracer } from '@mr/observability';
import type { TraceFrame } from '@mr/vmft-protocol';
import { nowMs } from './tracing.ts';
import { encodeKvRequest, decodeKvResponse, KV_LIMITS, type KvOp, type KvStatus, type KvRequest as KvPacket } from '@mr/vmft-guests';
import { FT_CODES } from '@mr/vmft-protocol';
import { createError } from '@mr/errors';
import type { NodeMetrics } from './metrics.ts';

export const ERR_GUEST_REFUSED = createError<[string]>('FT_ERR_GUEST_REFUSED', 'the guest refused the request: %s', 422, { retryable: false });
export const ERR_REQUEST_TIMEOUT = createError<[number]>('FT_ERR_REQUEST_TIMEOUT', 'no answer within %s ms (retry with the same session and seq)', 503, { retryable: true });
export const ERR_SESSION_EXPIRED = createError<[number]>(
  FT_CODES.sessionExpired,
  `session %s is unknown, closed or expired (the guest keeps the ${KV_LIMITS.maxSessions} most recently used): not applied; open a new session`,
  410,
  { retryable: false },
);
export const ERR_SEQ_ACKED = createError<[number, number]>(
  FT_CODES.seqAcked,
  'seq %s of session %s is below the ackBelow the client sent earlier: its answer was forgotten; not applied again',
  409,
  { retryable: false },
);
export const ERR_TOO_MANY_OUTSTANDING = createError<[number, number]>(
  FT_CODES.tooManyOutstanding,
  `seq %s of session %s is ${KV_LIMITS.maxOutstanding} or more above the lowest unanswered seq (ackBelow): not applied; wait for earlier answers`,
  429,
  { retryable: false },
);

/** What the route hands the guest: a session request, or opening/closing a session. */
export type KvRequest =
  | { op: KvOp; session: number; seq: number; ackBelow: number; key: string; value?: string | undefined }
  | { op: 'open-session' }
  | { op: 'close-session'; session: number };

export interface KvAnswer {
  value: string | number | null;
}

interface Pending {
  resolve(v: KvAnswer): void;
  reject(err: Error): void;
  req: KvRequest;
  t0: number;
  deliveredAt?: number;
  span?: Span | undefined;
  timer: NodeJS.Timeout;
  /** Stage times of a sampled request (wall ms): received, handed to the core, logged, acknowledged. */
  stages?: { receivedAt: number; fedAt: number; loggedAt?: number; seq?: number; ackedAt?: number };
}

const tr = tracer('vm-node');

export interface KvRequestsOptions {
  requestTimeoutMs: number;
  metrics: NodeMetrics;
  log: FastifyBaseLogger;
}

export class KvRequests {
  readonly #opts: KvRequestsOptions;
  #pending = new Map<number, Pending>();
  /**
   * NIC tags of this node's client requests. After a failover the guest can
   * answer requests the previous primary delivered (they are in the log), with
   * that node's tags: starting at a random u32 keeps the two ranges apart, so
   * such an answer finds no waiting request here instead of the wrong one.
   */
  #nextTag = 1 + randomInt(0xfffffffe);
  /** Sampled requests logged but not yet acknowledged, in log order (their trace frames and ack spans). */
  #unacked: { seq: number; tag: number; p: Pending }[] = [];

  constructor(opts: KvRequestsOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#pending.size;
  }

  /**
   * Registers a request under a fresh tag and hands its packet to `deliver`
   * (which feeds it to the core). Resolves with the guest's answer once it is
   * released, or rejects on timeout / drop / stop.
   */
  add(req: KvRequest, span: Span | undefined, deliver: (packet: Uint8Array, tag: string) => void, receivedAt?: number): Promise<KvAnswer> {
    const tag = this.#nextTag;
    this.#nextTag = this.#nextTag >= 0xffffffff ? 1 : this.#nextTag + 1;
    const packet = encodeKvRequest(packetOf(req, tag));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.get(tag)) {
          this.#pending.delete(tag);
          reject(ERR_REQUEST_TIMEOUT(this.#opts.requestTimeoutMs));
        }
      }, this.#opts.requestTimeoutMs);
      const p: Pending = { resolve, reject, req, t0: performance.now(), span, timer };
      if (isSampled(span)) {
        const fedAt = nowMs();
        p.stages = { receivedAt: receivedAt ?? fedAt, fedAt };
        this.#stage(p, 'vm.primary.receive', p.stages.receivedAt, fedAt);
      }
      this.#pending.set(tag, p);
      deliver(packet, String(tag));
    });
  }

  /** A packet the guest transmitted and the output rule released (or, with the rule off, produced). */
  answer(packet: Uint8Array, viaRule: boolean): void {
    let resp;
    try {
      resp = decodeKvResponse(packet);
    } catch (err) {
      this.#opts.log.warn({ err: (err as Error).message }, 'guest transmitted a packet that is not a kv response');
      return;
    }
    const p = this.#pending.get(resp.tag);
    if (!p) return; // answered already (output rule off), or the requester is gone
    this.#pending.delete(resp.tag);
    clearTimeout(p.timer);
    const now = performance.now();
    if (viaRule && p.deliveredAt !== undefined) this.#opts.metrics.holdSeconds.observe((now - p.deliveredAt) / 1000);
    p.span?.addEvent('released', { 'ft.output_rule': viaRule });
    if (p.stages) {
      const st = p.stages;
      // The output rule's wait: from the acknowledgement (or the logging, without a backup or without the rule) to the release.
      this.#stage(p, 'vm.primary.release', st.ackedAt ?? st.loggedAt ?? st.fedAt, nowMs(), { 'ft.output_rule': viaRule });
      p.stages = undefined;
    }
    if (resp.status === 'ok') {
      const numeric = (p.req.op === 'incr' || p.req.op === 'open-session') && /^-?\d+$/.test(resp.value ?? '');
      p.resolve({ value: numeric ? Number(resp.value) : resp.value });
    } else if (resp.status === 'not-found') p.resolve({ value: null });
    else p.reject(refusal(p.req, resp.status));
  }

  /** The core logged the request's packet (it now survives a failover). */
  delivered(tag: string | undefined, seq: number, icount: number, withBackup: boolean): void {
    const p = tag !== undefined ? this.#pending.get(Number(tag)) : undefined;
    if (p) {
      p.deliveredAt = performance.now();
      p.span?.addEvent('logged', { 'ft.log.seq': seq, 'ft.icount': icount });
      p.span?.setAttribute('ft.log.seq', seq);
      if (p.stages) {
        const at = nowMs();
        this.#stage(p, 'vm.primary.log', p.stages.fedAt, at, { 'ft.log.seq': seq, 'ft.icount': icount });
        p.stages.loggedAt = at;
        p.stages.seq = seq;
        if (withBackup) this.#unacked.push({ seq, tag: Number(tag), p });
      }
    }
  }

  /** The trace frame to send before log entry `seq` when it is a sampled request's packet. */
  traceFrame(seq: number): TraceFrame | undefined {
    if (this.#unacked.length === 0 || seq < this.#unacked[0]!.seq) return undefined;
    const u = this.#unacked.find((x) => x.seq === seq);
    if (!u || !u.p.span) return undefined;
    const c = u.p.span.spanContext();
    return { type: 'trace', seq, traceId: c.traceId, spanId: c.spanId, flags: c.traceFlags };
  }

  /** The backup acknowledged every entry up to `seq`: the ack stage of the sampled requests among them ends. */
  acked(seq: number): void {
    if (this.#unacked.length === 0) return;
    const at = nowMs();
    while (this.#unacked.length > 0 && this.#unacked[0]!.seq <= seq) {
      const { p } = this.#unacked.shift()!;
      if (!p.stages || p.stages.loggedAt === undefined) continue; // released already (no output rule)
      this.#stage(p, 'vm.primary.ack', p.stages.loggedAt, at, { 'ft.log.seq': p.stages.seq ?? 0 });
      p.stages.ackedAt = at;
    }
  }

  /** No backup will acknowledge what is logged (it was lost): forget the sampled entries waiting for it. */
  dropUnacked(): void {
    this.#unacked = [];
  }

  /** One stage of a sampled request: a child of its vm.request span, from `start` to `end` (wall ms). */
  #stage(p: Pending, name: string, start: number, end: number, attrs: Record<string, string | number | boolean> = {}): void {
    if (!p.span) return;
    const parent = trace.setSpan(context.active(), p.span);
    tr.startSpan(name, { startTime: start, attributes: attrs }, parent).end(Math.max(start, end));
  }

  /** The core dropped the request's packet: fail the request with `err()`. */
  dropped(tag: string | undefined, err: () => Error): void {
    const t = tag !== undefined ? Number(tag) : undefined;
    const p = t !== undefined ? this.#pending.get(t) : undefined;
    if (p && t !== undefined) {
      this.#pending.delete(t);
      clearTimeout(p.timer);
      p.reject(err());
    }
  }

  /** Fails every waiting request with `err()` (the node stopped serving). */
  rejectAll(err: () => Error): void {
    this.#unacked = [];
    for (const [tag, p] of this.#pending) {
      this.#pending.delete(tag);
      clearTimeout(p.timer);
      p.reject(err());
    }
  }
}

function packetOf(req: KvRequest, tag: number): KvPacket {
  if (req.op === 'open-session') return { tag, op: req.op };
  if (req.op === 'close-session') return { tag, op: req.op, session: req.session };
  const { value, ...rest } = req;
  return { ...rest, tag, ...(value !== undefined ? { value } : {}) };
}

/** The coded error for a guest status other than ok / not-found. */
function refusal(req: KvRequest, status: KvStatus): Error {
  const session = req.op === 'open-session' ? 0 : req.session;
  const seq = req.op === 'open-session' || req.op === 'close-session' ? 0 : req.seq;
  switch (status) {
    case 'session-expired':
      return ERR_SESSION_EXPIRED(session);
    case 'seq-acked':
      return ERR_SEQ_ACKED(seq, session);
    case 'too-many-outstanding':
      return ERR_TOO_MANY_OUTSTANDING(seq, session);
    default:
      return ERR_GUEST_REFUSED(status);
  }
}
