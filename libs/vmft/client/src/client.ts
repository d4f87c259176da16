import { Pool, errors as undiciErrors } from 'undici';
import type { ClientOp, ClientReply } from '@mr/vmft-protocol';
import { ERR_CLIENT_CONFIG, ERR_VM_REJECTED, ERR_VM_UNAVAILABLE } from './errors.ts';

export interface VmClientOptions {
  /** Base URLs of the VM's nodes (primary and backup, any order). */
  nodes: string[];
  vmId: string;
  /** Client id the guest deduplicates by (with the request id). Default: a random one. */
  clientId?: string;
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
  /** Default: `<clientId>-<n>` with n counting up from 1. Reuse one to retry by hand. */
  requestId?: string;
}

export interface VmAnswer {
  value: ClientReply['value'];
  requestId: string;
  /** The node that answered. */
  node: string;
  attempts: number;
}

function normalize(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw ERR_CLIENT_CONFIG(`node URL must be http(s), got ${url}`);
  return u.origin;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A client of one FT VM. It knows every node, sends to the one it believes
 * live, follows a 503's `live` hint (or tries the next node on a 503 without
 * one, a refused connection or a timeout), and retries with the SAME request
 * id, so the guest applies each request once however many attempts it takes.
 */
export class VmClient {
  readonly vmId: string;
  readonly clientId: string;
  #nodes: string[];
  #current = 0;
  #pools = new Map<string, Pool>();
  #seq = 0;
  /** Nodes that just failed to connect: hints to them are ignored, rotation skips them, for a while. */
  #downUntil = new Map<string, number>();
  #opts: Required<Pick<VmClientOptions, 'attemptTimeoutMs' | 'deadlineMs' | 'retryDelayMs' | 'connections'>> & VmClientOptions;

  constructor(opts: VmClientOptions) {
    if (!Array.isArray(opts.nodes) || opts.nodes.length === 0) throw ERR_CLIENT_CONFIG('nodes: at least one node URL is required');
    if (!opts.vmId) throw ERR_CLIENT_CONFIG('vmId is required');
    this.#opts = { attemptTimeoutMs: 3000, deadlineMs: 30_000, retryDelayMs: 20, connections: 8, ...opts };
    for (const k of ['attemptTimeoutMs', 'deadlineMs', 'retryDelayMs', 'connections'] as const) {
      const v = this.#opts[k];
      if (!Number.isFinite(v) || v < 0) throw ERR_CLIENT_CONFIG(`${k} must be a non-negative number, got ${v}`);
    }
    this.#nodes = [...new Set(opts.nodes.map(normalize))];
    this.vmId = opts.vmId;
    this.clientId = opts.clientId ?? `c-${Math.random().toString(36).slice(2, 10)}`;
  }

  /** The node the client currently sends to. */
  get live(): string {
    return this.#nodes[this.#current]!;
  }

  get nodes(): readonly string[] {
    return this.#nodes;
  }

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

  /** Sends one request; resolves with the guest's answer once the live primary released it. */
  async request(req: VmRequest): Promise<VmAnswer> {
    const requestId = req.requestId ?? `${this.clientId}-${++this.#seq}`;
    const body = JSON.stringify({ clientId: this.clientId, requestId, op: req.op, key: req.key, ...(req.value !== undefined ? { value: req.value } : {}) });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#opts.token) headers['authorization'] = `Bearer ${this.#opts.token}`;
    const deadline = Date.now() + this.#opts.deadlineMs;
    let delay = this.#opts.retryDelayMs;
    let lastReason = 'no attempt made';
    for (let attempt = 1; ; attempt++) {
      const node = this.live;
      let reason: string;
      let hinted = false;
      try {
        const res = await this.#pool(node).request({ method: 'POST', path: `/v1/vms/${encodeURIComponent(this.vmId)}/requests`, headers, body });
        const text = await res.body.text();
        if (res.statusCode === 200) {
          const parsed = JSON.parse(text) as ClientReply;
          return { value: parsed.value, requestId, node, attempts: attempt };
        }
        let err: { message?: string; live?: string; reason?: string; code?: string } = {};
        try {
          err = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        if (res.statusCode === 503 || res.statusCode >= 500 || res.statusCode === 429) {
          reason = `${node} answered ${res.statusCode}: ${err.message ?? text.slice(0, 200)}`;
          hinted = this.#follow(err.live);
          if (!hinted) this.#next();
        } else {
          throw ERR_VM_REJECTED(res.statusCode, err.message ?? text.slice(0, 200));
        }
      } catch (e) {
        if ((e as { code?: string }).code === ERR_VM_REJECTED.code) throw e;
        reason = `${node}: ${(e as Error).message}${e instanceof undiciErrors.UndiciError ? ` (${(e as { code?: string }).code})` : ''}`;
        this.#downUntil.set(node, Date.now() + 1000);
        this.#next();
      }
      lastReason = reason;
      this.#opts.onRetry?.({ node, attempt, reason });
      if (Date.now() + (hinted ? 0 : delay) > deadline) throw ERR_VM_UNAVAILABLE(this.vmId, lastReason);
      if (!hinted) {
        await sleep(delay);
        delay = Math.min(delay * 2, this.#opts.retryDelayMs * 8);
      }
    }
  }

  get(key: string, requestId?: string): Promise<VmAnswer> {
    return this.request({ op: 'get', key, requestId });
  }
  put(key: string, value: string, requestId?: string): Promise<VmAnswer> {
    return this.request({ op: 'put', key, value, requestId });
  }
  incr(key: string, requestId?: string): Promise<VmAnswer> {
    return this.request({ op: 'incr', key, requestId });
  }
  append(key: string, value: string, requestId?: string): Promise<VmAnswer> {
    return this.request({ op: 'append', key, value, requestId });
  }

  /** Closes the connections; requests still in flight after 1 s are aborted. */
  async close(): Promise<void> {
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
