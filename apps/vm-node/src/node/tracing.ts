/**
 * The VM node's traces (README "Traces"): the backup's part of a client
 * request's trace, and the failover trace. Spans are made with explicit
 * start and end times at the moments the driver reports, so that stages are
 * contiguous: one stage ends at the very instant the next one starts.
 *
 * Nothing here changes what the core or the guest sees. Without telemetry
 * the OTel API is a no-op and the backup only keeps the trace frames it is
 * sent (none: the primary sends them for sampled requests only).
 */
import { ROOT_CONTEXT, SpanStatusCode, trace, TraceFlags, type Context, type Span } from '@opentelemetry/api';
import { tracer } from '@mr/observability';
import type { TraceFrame } from '@mr/vmft-protocol';
import type { FtEvent } from '@mr/vmft-core';

/** Wall-clock ms with sub-ms resolution (span times). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

const tr = tracer('vm-node');

/** At most this many sampled entries a backup follows at once (older ones are dropped: memory stays bounded). */
export const MAX_BACKUP_TRACES = 1024;

interface BackupEntry {
  parent: Context;
  receivedAt: number;
  bufferedAt?: number;
  icount?: number;
}

/**
 * Backup side of a request trace: the primary sends a trace frame before a
 * sampled request's nic entry; the entry's receive, ack and replay become
 * spans under the request's span on the primary (`vm.request`).
 */
export class BackupTraces {
  readonly #attrs: Record<string, string>;
  #bySeq = new Map<number, BackupEntry>();

  constructor(attrs: { vmId: string; nodeId: string }) {
    this.#attrs = { 'ft.vm.id': attrs.vmId, 'ft.node.id': attrs.nodeId };
  }

  get size(): number {
    return this.#bySeq.size;
  }

  /** A trace frame arrived at `at` (the batch's arrival). */
  frame(f: TraceFrame, at: number): void {
    if (this.#bySeq.has(f.seq)) return; // a resend
    if (this.#bySeq.size >= MAX_BACKUP_TRACES) this.#bySeq.delete(this.#bySeq.keys().next().value!);
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: f.traceId, spanId: f.spanId, traceFlags: f.flags & TraceFlags.SAMPLED, isRemote: true });
    this.#bySeq.set(f.seq, { parent, receivedAt: at });
  }

  /**
   * The core buffered entries up to `seq` (handed to it at `handedAt`) and
   * wrote its ack at `ackedAt`: receive [arrival → handed to the core] and
   * ack [handed → ack written] for each traced entry among them.
   */
  buffered(entries: readonly { seq: number; icount: number }[], handedAt: number, ackedAt: number): void {
    if (this.#bySeq.size === 0) return;
    for (const e of entries) {
      const b = this.#bySeq.get(e.seq);
      if (!b || b.bufferedAt !== undefined) continue;
      b.bufferedAt = ackedAt;
      b.icount = e.icount;
      const attrs = { ...this.#attrs, 'ft.log.seq': e.seq, 'ft.icount': e.icount };
      tr.startSpan('vm.backup.receive', { startTime: b.receivedAt, attributes: attrs }, b.parent).end(handedAt);
      tr.startSpan('vm.backup.ack', { startTime: handedAt, attributes: attrs }, b.parent).end(ackedAt);
    }
  }

  /** The guest replayed every entry up to `seq`: replay [buffered → now] for the traced ones. */
  replayed(seq: number, at: number): void {
    if (this.#bySeq.size === 0) return;
    for (const [s, b] of this.#bySeq) {
      if (s > seq) continue;
      this.#bySeq.delete(s);
      if (b.bufferedAt === undefined) continue;
      tr.startSpan('vm.backup.replay', { startTime: b.bufferedAt, attributes: { ...this.#attrs, 'ft.log.seq': s, ...(b.icount !== undefined ? { 'ft.icount': b.icount } : {}) } }, b.parent).end(at);
    }
  }

  clear(): void {
    this.#bySeq.clear();
  }
}

export type FailoverStage = 'detect' | 'catch_up' | 'arbitrate' | 'go_live' | 'reprotect';

/**
 * One failover as its own trace (a new root, whatever context is active):
 * `vm.failover` with one child span per stage, back to back:
 *
 *   takeover (the backup goes live): detect [last frame heard → suspicion],
 *     catch_up [suspicion → the log held is replayed], arbitrate [test-and-set
 *     asked → won], go_live [won → the first slice ran as the primary],
 *     reprotect [→ a new backup joined and acknowledged: protected again]
 *   alone (the primary lost its backup): detect [last ack heard → suspicion],
 *     arbitrate [→ won: going on alone], reprotect [→ protected again]
 *
 * The root spans exactly the stages, so their durations add up to it.
 */
export class FailoverTrace {
  readonly kind: 'takeover' | 'alone';
  readonly startedAt: number;
  readonly root: Span;
  readonly rootContext: Context;
  readonly stages: { stage: FailoverStage; startMs: number; endMs: number }[] = [];
  #stage: { name: FailoverStage; span: Span; startMs: number } | undefined;
  #ended = false;
  readonly #attrs: Record<string, string | number>;

  constructor(opts: { kind: 'takeover' | 'alone'; vmId: string; nodeId: string; epoch: number; lastHeardAt: number; suspectedAt: number; silentTicks: number }) {
    this.kind = opts.kind;
    this.startedAt = Math.min(opts.lastHeardAt, opts.suspectedAt);
    this.#attrs = { 'ft.vm.id': opts.vmId, 'ft.node.id': opts.nodeId };
    this.root = tr.startSpan(
      'vm.failover',
      { root: true, startTime: this.startedAt, attributes: { ...this.#attrs, 'ft.failover.kind': opts.kind, 'ft.epoch.before': opts.epoch, 'ft.failover.silent_ticks': opts.silentTicks } },
      ROOT_CONTEXT,
    );
    this.rootContext = trace.setSpan(ROOT_CONTEXT, this.root);
    this.#begin('detect', this.startedAt);
    this.#next(opts.kind === 'takeover' ? 'catch_up' : 'arbitrate', opts.suspectedAt);
  }

  get stage(): FailoverStage | undefined {
    return this.#ended ? undefined : this.#stage?.name;
  }
  get ended(): boolean {
    return this.#ended;
  }

  /** The context of the current stage (effects started now belong to it, e.g. the test-and-set call). */
  context(): Context {
    return this.#stage ? trace.setSpan(this.rootContext, this.#stage.span) : this.rootContext;
  }

  #begin(name: FailoverStage, at: number): void {
    const span = tr.startSpan(`vm.failover.${name}`, { startTime: at, attributes: { ...this.#attrs, 'ft.failover.stage': name } }, this.rootContext);
    this.#stage = { name, span, startMs: at };
  }

  #next(name: FailoverStage | undefined, at: number): void {
    const s = this.#stage;
    if (s) {
      const end = Math.max(at, s.startMs);
      s.span.end(end);
      this.stages.push({ stage: s.name, startMs: s.startMs, endMs: end });
      this.#stage = undefined;
      if (name) this.#begin(name, end);
      return;
    }
    if (name) this.#begin(name, at);
  }

  /** A core event at `at`: moves the stages along. */
  event(ev: FtEvent, at: number): void {
    if (this.#ended) return;
    const stage = this.#stage?.name;
    switch (ev.type) {
      case 'tas-requested':
        if (stage === 'catch_up') this.#next('arbitrate', at);
        this.#stage?.span.setAttribute('ft.epoch', ev.epoch);
        break;
      case 'live':
        if (stage === 'arbitrate') {
          this.root.setAttribute('ft.epoch', ev.epoch);
          this.#next('go_live', at);
        }
        break;
      case 'alone':
        if (stage === 'arbitrate') {
          this.root.setAttribute('ft.epoch', ev.epoch);
          this.#next('reprotect', at);
        }
        break;
      case 'stopped':
        this.fail(ev.reason, at);
        break;
      default:
        break;
    }
  }

  /** The first slice ran as the live primary. */
  served(at: number): void {
    if (this.#stage?.name === 'go_live') this.#next('reprotect', at);
  }

  /** A new backup joined and acknowledged: protected again. Ends the trace. */
  protectedAgain(at: number, backup: string | undefined): void {
    if (this.#stage?.name !== 'reprotect') return;
    if (backup) this.#stage.span.setAttribute('ft.backup', backup);
    this.#next(undefined, at);
    this.#end(at, { 'ft.failover.outcome': 'protected' });
  }

  /** The failover did not finish (lost test-and-set, node stopped or closed). */
  fail(reason: string, at: number): void {
    if (this.#ended) return;
    const s = this.#stage;
    s?.span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    this.#next(undefined, at);
    this.root.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    this.#end(at, { 'ft.failover.outcome': s?.name === 'reprotect' ? 'unprotected' : 'failed' });
  }

  #end(at: number, attrs: Record<string, string>): void {
    this.#ended = true;
    this.root.setAttributes(attrs);
    this.root.end(Math.max(at, this.startedAt));
  }

  /** Stage durations in ms, in order (for logs and tests). */
  durations(): Record<string, number> {
    return Object.fromEntries(this.stages.map((s) => [s.stage, Math.round((s.endMs - s.startMs) * 10) / 10]));
  }
}
