import { Pool, errors as undiciErrors } from 'undici';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { FT_CODES, type ClientOp, type ClientReply, type SessionReply, type VmStatus } from '@mr/vmft-protocol';
import { vmStatus, type StatusOptions } from './status.ts';
import { ERR_CLIENT_CONFIG, ERR_SESSION_EXPIRED, ERR_VM_REJECTED, ERR_VM_UNAVAILABLE, withOutcome, type Outcome } from './errors.ts';

export interface VmClientOptions {
  /** Base URLs of the VM's nodes (primary and backup, any order). */
  nodes: string[];
  vmId: string;
  token?: string | undefined;
  /** Time one attempt may take before the client tries again (default 3000 ms). */
  attemptTimeoutMs?: number;
  /** Time a request may take over all its attempts (default 30000 ms). */
  deadlineMs?: number;
  /** First pause between attempts; doubles up to 8x (default 20 ms). */
  retryDelayMs?: number;
  /** HTTP/1.1 connections per node (default 8). */
  connections?: number;
  /** Called on every failed attempt (for logs and tests). */
  onRetry?: (info: { node: string; attempt: number; reason: string }) => void;
}

export interface VmRequest {
  op: ClientOp;
  key: string;
  value?: string;
}

export interface VmAnswer {
  value: ClientReply['value'];
  /** The session and seq the request was sent under (retries reuse both). */
  session: number;
  seq: number;
  /** The node that answered. */
  node: string;
  attempts: number;
}

/** Where a request goes in its session: `ackBelow` is the lowest seq whose answer the sender has not received. */
export interface SessionSlot {
  session: number;
  seq: number;
  ackBelow: number;
}

interface Session {
  id: number;
  maxOutstanding: number;
  nextSeq: number;
  /** Seqs sent whose answer has not arrived (nor been given up). */
  unanswered: Set<number>;
  dead: boolean;
}

type Reply = { status: number; body: Record<string, unknown>; node: string; attempts: number; maybeSent: boolean };

function normalize(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw ERR_CLIENT_CONFIG(`node URL must be http(s), got ${url}`);
  return u.origin;
}

/** Spans of the client (a no-op unless the process started OpenTelemetry): README "Traces". */
const tracer = trace.getTracer('vmft-client');

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A client of one FT VM with exactly-once requests. It opens a client session
 * on the VM (POST /v1/vms/:id/sessions) the first time it needs one, numbers
 * its requests 1, 2, 3, … in it, and tells the guest with every request which
 * answers it has received (ackBelow). It knows every node, sends to the one it
 * believes live, follows a 503's `live` hint (or tries the next node on a 503
 * without one, a refused connection or a timeout), and retries with the SAME
 * session and seq, so the guest applies each request once however many
 * attempts it takes.
 *
 * It never re-applies: when the session expires (the guest keeps the 256 most
 * recently used) a request already sent under it fails with
 * FT_ERR_SESSION_EXPIRED and `outcome: 'unknown'`; later requests open a new
 * session. Every error carries `outcome`: 'not-applied' (certainly no effect)
 * or 'unknown' (it may have taken effect, once). At most `maxOutstanding` (8)
 * requests of one client are in flight at once; more wait their turn here.
 */
export class VmClient {
  /** One node's GET /v1/vms/:id, or undefined when it does not answer (see vmStatus). */
  static status(url: string, opts: StatusOptions): Promise<VmStatus | undefined> {
    return vmStatus(url, opts);
  }

  readonly vmId: string;
  #nodes: string[];
  #current = 0;
  #pools = new Map<string, Pool>();
  #session: Session | undefined;
  #opening: Promise<Session> | undefined;
  /** Requests waiting for room in the session's window. */
  #waiters: (() => void)[] = [];
  #closed = false;
  /** Nodes that just failed to connect: hints to them are ignored, rotation skips them, for a while. */
  #downUntil = new Map<string, number>();
  #opts: Required<Pick<VmClientOptions, 'attemptTimeoutMs' | 'deadlineMs' | 'retryDelayMs' | 'connections'>> & VmClientOptions;

  constructor(opts: VmClientOptions) {
    if (!Array.isArray(opts.nodes) || opts.nodes.length === 0) throw ERR_CLIENT_CONFIG('nodes: at least one node URL is required');
    if (!opts.vmId) throw ERR_CLIENT_CONFIG('vmId is required');
    if ('clientId' in opts) throw ERR_CLIENT_CONFIG('clientId was removed: the VM assigns a session (see README "Client sessions")');
    this.#opts = { attemptTimeoutMs: 3000, deadlineMs: 30_000, retryDelayMs: 20, connections: 8, ...opts };
    for (const k of ['attemptTimeoutMs', 'deadlineMs', 'retryDelayMs', 'connections'] as const) {
      const v = this.#opts[k];
      if (!Number.isFinite(v) || v < 0) throw ERR_CLIENT_CONFIG(`${k} must be a non-negative number, got ${v}`);
    }
    this.#nodes = [...new Set(opts.nodes.map(normalize))];
    this.vmId = opts.vmId;
  }

  /** The node the client currently sends to. */
  get live(): string {
    return this.#nodes[this.#current]!;
  }

  get nodes(): readonly string[] {
    return this.#nodes;
  }

  /** The current session's id (undefined before the first request or after it expired). */
  get session(): number | undefined {
    return this.#session && !this.#session.dead ? this.#session.id : undefined;
  }

  // ------------------------------------------------------------------ requests

  /** Sends one request; resolves with the guest's answer once the live primary released it. */
  async request(req: VmRequest): Promise<VmAnswer> {
    for (let reopened = 0; ; reopened++) {
      const { s, seq } = await this.#slot();
      try {
        const slot = (): SessionSlot => ({ session: s.id, seq, ackBelow: Math.min(...s.unanswered) });
        return await this.#send(slot, req, s);
      } catch (err) {
        // The session had expired before this request ever reached the guest: certainly not
        // applied, so it may go again on a new session (a few times: others may be opening many).
        const e = err as { code?: string; outcome?: string };
        if (e.code === ERR_SESSION_EXPIRED.code && e.outcome === 'not-applied' && reopened < 3) continue;
        throw err;
      } finally {
        s.unanswered.delete(seq); // answered or given up: either way the guest may forget it
        this.#wake();
      }
    }
  }

  /**
   * One request at an explicit place in a session (retries by hand, tests,
   * `mr vm client --session S --seq N`): sent with failover retries like any
   * other, outside this client's own numbering.
   */
  requestAt(at: SessionSlot, req: VmRequest): Promise<VmAnswer> {
    return this.#send(() => at, req, undefined);
  }

  get(key: string): Promise<VmAnswer> {
    return this.request({ op: 'get', key });
  }
  put(key: string, value: string): Promise<VmAnswer> {
    return this.request({ op: 'put', key, value });
  }
  incr(key: string): Promise<VmAnswer> {
    return this.request({ op: 'incr', key });
  }
  append(key: string, value: string): Promise<VmAnswer> {
    return this.request({ op: 'append', key, value });
  }

  /**
   * One request with its retries as one span, `vm.client.request`: its HTTP
   * attempts (instrumented undici) are children, and the node's spans join
   * the trace through their traceparent.
   */
  #send(slot: () => SessionSlot, req: VmRequest, s: Session | undefined): Promise<VmAnswer> {
    const at0 = slot();
    const span = tracer.startSpan('vm.client.request', {
      kind: SpanKind.INTERNAL,
      attributes: { 'ft.vm.id': this.vmId, 'ft.op': req.op, 'ft.session.id': at0.session, 'ft.session.seq': at0.seq },
    });
    return context.with(trace.setSpan(context.active(), span), () => this.#sendOnce(slot, req, s, at0)).then(
      (a) => {
        span.setAttributes({ 'ft.client.attempts': a.attempts, 'ft.client.node': a.node });
        span.end();
        return a;
      },
      (err: unknown) => {
        const e = err as Error & { code?: string; outcome?: string };
        span.setAttributes({ 'ft.client.outcome': e.outcome ?? 'unknown', ...(e.code ? { 'error.type': e.code } : {}) });
        span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
        span.end();
        throw err;
      },
    );
  }

  async #sendOnce(slot: () => SessionSlot, req: VmRequest, s: Session | undefined, at0: SessionSlot): Promise<VmAnswer> {
    const path = `/v1/vms/${encodeURIComponent(this.vmId)}/requests`;
    const r = await this.#call('POST', path, () => ({ ...slot(), op: req.op, key: req.key, ...(req.value !== undefined ? { value: req.value } : {}) }));
    if (r.status === 200) return { value: (r.body as ClientReply).value, session: at0.session, seq: at0.seq, node: r.node, attempts: r.attempts };
    const code = typeof r.body['code'] === 'string' ? r.body['code'] : '';
    const message = typeof r.body['message'] === 'string' ? r.body['message'] : `status ${r.status}`;
    // Only an answer to this very attempt says "not applied"; an earlier attempt may have been.
    const outcome: Outcome = r.maybeSent ? 'unknown' : 'not-applied';
    if (code === FT_CODES.sessionExpired) {
      if (s) s.dead = true;
      if (s && this.#session === s) this.#session = undefined;
      this.#wake();
      throw withOutcome(ERR_SESSION_EXPIRED(at0.session, at0.seq, outcome === 'unknown' ? 'may have been applied once before it expired' : 'was not applied'), outcome, at0);
    }
    // A guest refusal (not a number, too large, table full) is the remembered answer: it changed nothing.
    const known: Outcome = code === 'FT_ERR_GUEST_REFUSED' ? 'not-applied' : code === FT_CODES.seqAcked ? 'unknown' : outcome;
    throw withOutcome(ERR_VM_REJECTED(r.status, `${code ? `${code}: ` : ''}${message}`), known, at0);
  }

  // ------------------------------------------------------------------ sessions

  /** Opens a session now (otherwise the first request does). A retried open may leave an unused session behind to expire. */
  async open(): Promise<number> {
    return (await this.#live()).id;
  }

  async #live(): Promise<Session> {
    if (this.#closed) throw withOutcome(ERR_CLIENT_CONFIG('the client is closed'), 'not-applied');
    if (this.#session && !this.#session.dead) return this.#session;
    this.#opening ??= (async () => {
      try {
        const r = await this.#call('POST', `/v1/vms/${encodeURIComponent(this.vmId)}/sessions`, undefined);
        if (r.status !== 201) throw withOutcome(ERR_VM_REJECTED(r.status, String(r.body['message'] ?? '')), 'not-applied');
        const body = r.body as SessionReply;
        const s: Session = { id: body.session, maxOutstanding: body.maxOutstanding, nextSeq: 1, unanswered: new Set(), dead: false };
        this.#session = s;
        return s;
      } finally {
        this.#opening = undefined;
      }
    })();
    return this.#opening;
  }

  /** The next seq of a live session, once its window has room (taken synchronously: no other request can take the same room). */
  async #slot(): Promise<{ s: Session; seq: number }> {
    for (;;) {
      const s = await this.#live();
      if (!s.dead && (s.unanswered.size === 0 || s.nextSeq - Math.min(...s.unanswered) < s.maxOutstanding)) {
        const seq = s.nextSeq++;
        s.unanswered.add(seq);
        return { s, seq };
      }
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  // ------------------------------------------------------------------ transport

  #pool(node: string): Pool {
    let p = this.#pools.get(node);
    if (!p) {
      p = new Pool(node, {
        connections: this.#opts.connections,
        headersTimeout: this.#opts.attemptTimeoutMs,
        bodyTimeout: this.#opts.attemptTimeoutMs,
        connect: { timeout: Math.min(this.#opts.attemptTimeoutMs, 2000) },
      });
      this.#pools.set(node, p);
    }
    return p;
  }

  #isDown(node: string): boolean {
    const until = this.#downUntil.get(node);
    return until !== undefined && until > Date.now();
  }

  #follow(live: string | undefined): boolean {
    if (!live) return false;
    let url: string;
    try {
      url = normalize(live);
    } catch {
      return false;
    }
    if (this.#isDown(url)) return false;
    let i = this.#nodes.indexOf(url);
    if (i < 0) {
      this.#nodes.push(url);
      i = this.#nodes.length - 1;
    }
    if (i === this.#current) return false;
    this.#current = i;
    return true;
  }

  /** Moves to the next node, skipping ones that just failed to connect when another is left. */
  #next(): void {
    const n = this.#nodes.length;
    for (let i = 1; i <= n; i++) {
      const j = (this.#current + i) % n;
      if (!this.#isDown(this.#nodes[j]!) || i === n) {
        this.#current = j;
        return;
      }
    }
  }

  /**
   * Sends until a node answers 2xx or 4xx (returned), following hints and
   * rotating on 503s, 5xx and network errors until the deadline (then throws
   * FT_ERR_VM_UNAVAILABLE). `maybeSent` is true once an attempt may have
   * reached the guest and its answer was lost (a timeout, a reset, a 5xx).
   */
  async #call(method: 'POST' | 'DELETE', path: string, body: (() => unknown) | undefined, deadlineMs = this.#opts.deadlineMs): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (body) headers['content-type'] = 'application/json';
    if (this.#opts.token) headers['authorization'] = `Bearer ${this.#opts.token}`;
    const deadline = Date.now() + deadlineMs;
    let delay = this.#opts.retryDelayMs;
    let maybeSent = false;
    for (let attempt = 1; ; attempt++) {
      const node = this.live;
      let reason: string;
      let hinted = false;
      let sentThis = false;
      try {
        const payload = body ? JSON.stringify(body()) : undefined;
        sentThis = true;
        const res = await this.#pool(node).request({ method, path, headers, ...(payload !== undefined ? { body: payload } : {}) });
        const text = await res.body.text();
        let parsed: Record<string, unknown> = {};
        try {
          parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
        } catch {
          parsed = { message: text.slice(0, 200) };
        }
        if (res.statusCode < 500) return { status: res.statusCode, body: parsed, node, attempts: attempt, maybeSent };
        reason = `${node} answered ${res.statusCode}: ${String(parsed['message'] ?? '')}`;
        // Not live / busy: refused before the guest. Any other 5xx (a timeout, a node that stopped) may have reached it.
        if (parsed['code'] !== FT_CODES.notPrimary && parsed['code'] !== FT_CODES.backpressure) maybeSent = true;
        hinted = this.#follow(typeof parsed['live'] === 'string' ? parsed['live'] : undefined);
        if (!hinted) this.#next();
      } catch (e) {
        const code = (e as { code?: string }).code;
        // A refused connection never carried the request; a timeout or reset may have.
        if (sentThis && code !== 'ECONNREFUSED' && code !== 'UND_ERR_CONNECT_TIMEOUT') maybeSent = true;
        reason = `${node}: ${(e as Error).message}${e instanceof undiciErrors.UndiciError ? ` (${code})` : ''}`;
        this.#downUntil.set(node, Date.now() + 1000);
        this.#next();
      }
      this.#opts.onRetry?.({ node, attempt, reason });
      if (Date.now() + (hinted ? 0 : delay) > deadline) throw withOutcome(ERR_VM_UNAVAILABLE(this.vmId, reason), maybeSent ? 'unknown' : 'not-applied');
      if (!hinted) {
        await sleep(delay);
        delay = Math.min(delay * 2, this.#opts.retryDelayMs * 8);
      }
    }
  }

  /**
   * Closes a session on the VM (default: this client's own, once nothing is in
   * flight in it): true when it was live, false when it had expired already.
   */
  async closeSession(id?: number, deadlineMs = this.#opts.deadlineMs): Promise<boolean> {
    const own = this.#session;
    const target = id ?? (own && !own.dead ? own.id : undefined);
    if (target === undefined) return false;
    if (own && own.id === target) {
      own.dead = true;
      this.#session = undefined;
    }
    const r = await this.#call('DELETE', `/v1/vms/${encodeURIComponent(this.vmId)}/sessions/${target}`, undefined, deadlineMs);
    if (r.status === 204) return true;
    if (r.body['code'] === FT_CODES.sessionExpired) return false;
    throw withOutcome(ERR_VM_REJECTED(r.status, String(r.body['message'] ?? '')), 'not-applied');
  }

  /**
   * Closes this client's session on the VM (best effort, one short try, and
   * only when nothing is in flight in it: an unclosed session expires by
   * itself; `keepSession` leaves it open) and the connections; requests
   * still in flight after 1 s are aborted.
   */
  async close(opts: { keepSession?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    const s = this.#session;
    if (!opts.keepSession && s && !s.dead && s.unanswered.size === 0) await this.closeSession(s.id, Math.min(1000, this.#opts.deadlineMs)).catch(() => undefined);
    this.#closed = true;
    this.#session = undefined;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(
      pools.map(async (p) => {
        const timer = setTimeout(() => void p.destroy().catch(() => {}), 1000);
        await p.close().catch(() => {});
        clearTimeout(timer);
      }),
    );
  }
}
