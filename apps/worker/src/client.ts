import { Pool, interceptors, errors as undiciErrors, type Dispatcher } from 'undici';
import { hasCode } from '@mr/errors';
import type {
  FetchFailure,
  FetchFailureReply,
  HeldIntermediates,
  HeldIntermediatesReply,
  Heartbeat,
  HeartbeatReply,
  PollReply,
  TaskAck,
  TaskAckBatch,
  TaskComplete,
  TaskFail,
  WorkerRegister,
  WorkerRegistered,
} from '@mr/mapreduce-protocol';
import { ROUTES, WORKER_SECRET_HEADER } from '@mr/mapreduce-protocol/routes';
import {
  ERR_COORDINATOR_REJECTED,
  ERR_COORDINATOR_UNAUTHORIZED,
  ERR_COORDINATOR_UNAVAILABLE,
  ERR_WORKER_CONFIG,
  ERR_WORKER_UNKNOWN,
} from './errors.ts';

export interface CoordinatorClientOptions {
  /**
   * Base URL of the coordinator, http://host:port (no path); or several,
   * comma-separated (an active coordinator and its standby): calls go to one
   * until it is unavailable (unreachable, or 503 such as a standby's
   * MR_ERR_NOT_ACTIVE), then to the next.
   */
  url: string;
  /** Bearer token (MR_TOKEN), if the coordinator requires one. */
  token?: string | undefined;
  /** Keep-alive connections to the coordinator (polls hold one each). Default 4. */
  connections?: number;
  /** Connect timeout. Default 2000. */
  connectTimeoutMs?: number;
  /** Headers/body timeout of ordinary (non-poll) requests. Default 10000. */
  requestTimeoutMs?: number;
  /** Retries of idempotent calls (complete, fail, heartbeat) inside one call. Default 2. */
  maxRetries?: number;
  /** First retry delay; doubles up to 1 s. Default 100. */
  retryMinMs?: number;
}

const REMOVED_OPTIONS: Record<string, string> = { timeoutMs: 'requestTimeoutMs', retries: 'maxRetries' };

function intInRange(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw ERR_WORKER_CONFIG(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

/** Error codes that mean "could not talk to the coordinator" (the worker keeps trying for a while). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ETIMEDOUT',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_REQ_RETRY',
]);

/**
 * The worker's side of the protocol: one undici Pool per coordinator
 * (keep-alive), composed with a retry interceptor that retries the
 * idempotent calls (complete/fail/heartbeat carry the attempt as a fencing
 * token, so a repeat is harmless). register and poll are not retried here:
 * a repeated poll could be handed a second task. Errors come out coded:
 * MR_ERR_COORDINATOR_UNAVAILABLE (retryable), _UNAUTHORIZED, _REJECTED,
 * MR_ERR_WORKER_UNKNOWN.
 */
interface Target {
  origin: string;
  pool: Pool;
  dispatcher: Dispatcher;
}

export class CoordinatorClient {
  readonly #targets: Target[];
  #cur = 0;
  readonly #token: string | undefined;
  /** The secret each registration returned, sent with every later request of that worker id. */
  readonly #secrets = new Map<string, string>();
  readonly #requestTimeoutMs: number;
  #closed = false;

  constructor(opts: CoordinatorClientOptions) {
    if (typeof opts !== 'object' || opts === null) throw ERR_WORKER_CONFIG('options must be an object');
    for (const [old, now] of Object.entries(REMOVED_OPTIONS)) {
      if (old in opts) throw ERR_WORKER_CONFIG(`${old} was removed; use ${now}`);
    }
    const urls: URL[] = [];
    for (const one of String(opts.url).split(',')) {
      let u: URL;
      try {
        u = new URL(one.trim());
      } catch {
        throw ERR_WORKER_CONFIG(`url must be an absolute http(s) URL (or several, comma-separated), got "${String(opts.url)}"`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw ERR_WORKER_CONFIG(`url must be http(s), got "${opts.url}"`);
      if (u.pathname !== '/' && u.pathname !== '') throw ERR_WORKER_CONFIG(`url must have no path, got "${opts.url}"`);
      urls.push(u);
    }
    if (urls.length > 8) throw ERR_WORKER_CONFIG(`at most 8 coordinator URLs, got ${urls.length}`);
    if (opts.token !== undefined && (typeof opts.token !== 'string' || /[\r\n]/.test(opts.token))) throw ERR_WORKER_CONFIG('token must be a single-line string');
    const connections = intInRange('connections', opts.connections, 4, 1, 256);
    const connectTimeoutMs = intInRange('connectTimeoutMs', opts.connectTimeoutMs, 2000, 1, 600_000);
    this.#requestTimeoutMs = intInRange('requestTimeoutMs', opts.requestTimeoutMs, 10_000, 1, 3_600_000);
    const maxRetries = intInRange('maxRetries', opts.maxRetries, 2, 0, 100);
    const retryMinMs = intInRange('retryMinMs', opts.retryMinMs, 100, 1, 60_000);

    this.#token = opts.token || undefined;
    this.#targets = urls.map((u) => {
      const pool = new Pool(u.origin, {
        connections,
        connectTimeout: connectTimeoutMs,
        keepAliveTimeout: 30_000,
        headersTimeout: this.#requestTimeoutMs,
        bodyTimeout: this.#requestTimeoutMs,
      });
      return { origin: u.origin, pool, dispatcher: this.#compose(pool, maxRetries, retryMinMs) };
    });
  }

  /** The coordinator calls go to now. */
  get url(): string {
    return this.#targets[this.#cur]!.origin;
  }

  #compose(pool: Pool, maxRetries: number, retryMinMs: number): Dispatcher {
    return pool.compose(
      interceptors.retry({
        maxRetries,
        minTimeout: retryMinMs,
        maxTimeout: 1000,
        timeoutFactor: 2,
        // Only methods listed per call are retried; POST is not idempotent in general.
        methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
        statusCodes: [502, 503, 504],
      }),
    );
  }

  /** The current coordinator is unavailable: the next call goes to the next one (an active's standby). */
  #rotate(from: number): void {
    if (this.#targets.length > 1 && this.#cur === from) this.#cur = (from + 1) % this.#targets.length;
  }

  async register(body: WorkerRegister): Promise<WorkerRegistered> {
    const r = (await this.#call('POST', ROUTES.workers, body, { idempotent: false })) as WorkerRegistered;
    if (typeof r.secret === 'string') this.#secrets.set(r.workerId, r.secret);
    return r;
  }

  /** Long poll: the coordinator holds it up to pollTimeoutMs; we allow that plus a margin. */
  async poll(workerId: string, free: number, pollTimeoutMs: number, signal?: AbortSignal): Promise<PollReply> {
    const timeout = pollTimeoutMs + 10_000;
    return (await this.#call('POST', ROUTES.poll(workerId), { free }, { idempotent: false, timeoutMs: timeout, signal, workerId })) as PollReply;
  }

  async complete(workerId: string, body: TaskComplete): Promise<TaskAck> {
    return (await this.#call('POST', ROUTES.complete(workerId), body, { idempotent: true, workerId })) as TaskAck;
  }

  /** Several completions in one request (idempotent like complete: each carries its attempt). */
  async completeBatch(workerId: string, completions: TaskComplete[]): Promise<TaskAck[]> {
    const r = (await this.#call('POST', ROUTES.completeBatch(workerId), { completions }, { idempotent: true, workerId })) as TaskAckBatch;
    return r.acks;
  }

  async fail(workerId: string, body: TaskFail): Promise<TaskAck> {
    return (await this.#call('POST', ROUTES.fail(workerId), body, { idempotent: true, workerId })) as TaskAck;
  }

  async heartbeat(workerId: string, body: Heartbeat): Promise<HeartbeatReply> {
    return (await this.#call('POST', ROUTES.heartbeat(workerId), body, { idempotent: true, workerId })) as HeartbeatReply;
  }

  /** Worker shuffle: a reduce could not fetch a map's output; the answer says what to do (idempotent enough: a repeat counts one more failure). */
  async fetchFailure(workerId: string, body: FetchFailure): Promise<FetchFailureReply> {
    return (await this.#call('POST', ROUTES.fetchFailure(workerId), body, { idempotent: true, workerId })) as FetchFailureReply;
  }

  /** Worker shuffle: which of the jobs this worker keeps map output for are over. */
  async heldIntermediates(workerId: string, body: HeldIntermediates): Promise<HeldIntermediatesReply> {
    return (await this.#call('POST', ROUTES.intermediates(workerId), body, { idempotent: true, workerId })) as HeldIntermediatesReply;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#targets.map((t) => t.pool.destroy().catch(() => {})));
  }

  async #call(
    method: 'POST' | 'GET',
    path: string,
    body: unknown,
    o: { idempotent: boolean; timeoutMs?: number; signal?: AbortSignal | undefined; workerId?: string },
  ): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.#token) headers['authorization'] = `Bearer ${this.#token}`;
    const secret = o.workerId === undefined ? undefined : this.#secrets.get(o.workerId);
    if (secret !== undefined) headers[WORKER_SECRET_HEADER] = secret;
    const at = this.#cur;
    const target = this.#targets[at]!;
    try {
      return await this.#send(target, method, path, body, o, headers);
    } catch (err) {
      if (hasCode(err, ERR_COORDINATOR_UNAVAILABLE.code)) this.#rotate(at);
      throw err;
    }
  }

  async #send(
    target: Target,
    method: 'POST' | 'GET',
    path: string,
    body: unknown,
    o: { idempotent: boolean; timeoutMs?: number; signal?: AbortSignal | undefined; workerId?: string },
    headers: Record<string, string>,
  ): Promise<unknown> {
    const url = target.origin;
    let res: Dispatcher.ResponseData;
    try {
      res = await target.dispatcher.request({
        origin: target.origin,
        method,
        path,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: o.timeoutMs ?? this.#requestTimeoutMs,
        bodyTimeout: o.timeoutMs ?? this.#requestTimeoutMs,
        signal: o.signal,
        ...(o.idempotent ? { retryOptions: { methods: ['POST'] } } : {}),
      } as Dispatcher.RequestOptions);
    } catch (err) {
      throw this.#networkError(url, err);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw this.#networkError(url, err);
    }
    const status = res.statusCode;
    if (status >= 200 && status < 300) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw ERR_COORDINATOR_UNAVAILABLE(url, `unparseable ${status} answer to ${method} ${path}`);
      }
    }
    let message = text.slice(0, 500);
    let code = '';
    try {
      const j = JSON.parse(text) as { message?: unknown; code?: unknown };
      if (typeof j.message === 'string') message = j.message;
      if (typeof j.code === 'string') code = j.code;
    } catch {
      // not JSON: keep the text
    }
    if (status === 401) throw ERR_COORDINATOR_UNAUTHORIZED(url, message);
    if (status === 404 && o.workerId && code !== 'MR_ERR_ROUTE_NOT_FOUND') throw ERR_WORKER_UNKNOWN(o.workerId);
    if (status >= 500 || status === 429 || status === 408) throw ERR_COORDINATOR_UNAVAILABLE(url, `${status} ${message}`);
    throw ERR_COORDINATOR_REJECTED(url, status, message);
  }

  #networkError(url: string, err: unknown): Error {
    const e = err as { code?: string; name?: string; message?: string; cause?: { code?: string } };
    if (e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED') return err as Error;
    const code = e?.code ?? e?.cause?.code;
    if ((code && NETWORK_CODES.has(code)) || err instanceof undiciErrors.UndiciError) {
      return ERR_COORDINATOR_UNAVAILABLE(url, code ?? e?.message ?? 'network error');
    }
    return ERR_COORDINATOR_UNAVAILABLE(url, e?.message ?? String(err));
  }
}
