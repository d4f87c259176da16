/**
 * A small JSON client for the CLI commands (submit, status, local): one
 * undici Agent, the MR_TOKEN bearer, and errors sorted into what the exit
 * codes need: unreachable / unauthorized (3), rejected 4xx (2), server 5xx.
 * Import it dynamically, after startTelemetry().
 */
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { EXIT } from './context.ts';
import { UsageError } from './args.ts';

export type ApiErrorKind = 'unreachable' | 'unauthorized' | 'rejected' | 'server';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    readonly statusCode?: number,
    readonly code?: string,
  ) {
    super(message);
  }

  get exitCode(): number {
    if (this.kind === 'rejected') return EXIT.USAGE;
    if (this.kind === 'server') return EXIT.FAILED;
    return EXIT.UNREACHABLE;
  }
}

export function normalizeBase(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ApiError('rejected', `not a URL: "${url}" (expected e.g. http://127.0.0.1:7070)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ApiError('rejected', `not an http(s) URL: "${url}"`);
  return u.origin + u.pathname.replace(/\/+$/, '');
}

export class Api {
  /** The coordinators given (an active and its standby: comma-separated); calls go to the current one. */
  readonly bases: string[];
  #cur = 0;
  readonly #token: string | undefined;
  readonly #agent = new Agent({ connectTimeout: 3000, keepAliveTimeout: 10_000 });

  constructor(base: string, token: string | undefined) {
    this.bases = base.split(',').map((b) => normalizeBase(b.trim()));
    this.#token = token || undefined;
  }

  get base(): string {
    return this.bases[this.#cur]!;
  }

  /** The current coordinator did not serve (unreachable, 5xx such as a standby's 503): use the next one. */
  #failover(at: number, err: unknown): void {
    if (this.bases.length < 2 || this.#cur !== at) return;
    if (err instanceof ApiError && (err.kind === 'unreachable' || (err.kind === 'server' && err.statusCode === 503))) this.#cur = (at + 1) % this.bases.length;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.#token) h['authorization'] = `Bearer ${this.#token}`;
    return h;
  }

  async get<T>(path: string): Promise<T> {
    return (await this.#json('GET', path)) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return (await this.#json('POST', path, body)) as T;
  }

  /**
   * POST with an Idempotency-Key, retried (undici's retry interceptor, capped
   * exponential backoff with jitter) while the coordinator does not answer or
   * answers 429/5xx: the key makes a repeat return the job the first try
   * created. About `retryForMs` of retrying in all.
   */
  async postIdempotent<T>(path: string, body: unknown, key: string, retryForMs = 30_000): Promise<T> {
    const minTimeout = 250;
    const maxTimeout = 4000;
    const started = Date.now();
    if (this.bases.length > 1) {
      // Several coordinators: each retry may go to the other one (the key makes a repeat harmless).
      for (let n = 1; ; n++) {
        try {
          return (await this.#json('POST', path, body, { 'idempotency-key': key })) as T;
        } catch (err) {
          const retryable = err instanceof ApiError && (err.kind === 'unreachable' || (err.kind === 'server' && [500, 502, 503, 504].includes(err.statusCode ?? 0)) || err.statusCode === 429);
          if (!retryable || Date.now() - started >= retryForMs) throw err;
          const cap = Math.min(maxTimeout, minTimeout * 2 ** Math.min(n - 1, 10));
          await new Promise((r) => setTimeout(r, cap / 2 + Math.random() * (cap / 2)));
        }
      }
    }
    const retrying = this.#agent.compose(
      interceptors.retry({
        methods: ['POST'],
        statusCodes: [429, 500, 502, 503, 504],
        errorCodes: ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED'],
        maxRetries: 1000,
        retry: (err, { state, opts }, cb) => {
          const o = opts.retryOptions!;
          const e = err as Error & { statusCode?: number; code?: string };
          const retryable = e.statusCode !== undefined ? o.statusCodes!.includes(e.statusCode) : e.code !== undefined && o.errorCodes!.includes(e.code);
          const cap = Math.min(maxTimeout, minTimeout * 2 ** Math.min(state.counter - 1, 10));
          const wait = cap / 2 + Math.random() * (cap / 2);
          const left = retryForMs - (Date.now() - started);
          if (!retryable || left <= 0) return cb(err);
          setTimeout(() => cb(null), Math.min(wait, left));
        },
      }),
    );
    return (await this.#json('POST', path, body, { 'idempotency-key': key }, retrying)) as T;
  }

  async delete<T>(path: string): Promise<T> {
    return (await this.#json('DELETE', path)) as T;
  }

  /** Opens a streaming GET (server-sent events). The caller consumes res.body. */
  async stream(path: string, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const at = this.#cur;
    try {
      return await this.#stream(path, signal);
    } catch (err) {
      this.#failover(at, err);
      throw err;
    }
  }

  async #stream(path: string, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.base + path, {
        method: 'GET',
        headers: this.headers({ accept: 'text/event-stream' }),
        dispatcher: this.#agent,
        headersTimeout: 10_000,
        bodyTimeout: 0,
        signal,
      });
    } catch (err) {
      throw this.#network(err);
    }
    if (res.statusCode >= 300) {
      const text = await res.body.text().catch(() => '');
      throw this.#httpError(res.statusCode, text, 'GET', path);
    }
    return res;
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => {});
  }

  async #json(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, extra: Record<string, string> = {}, dispatcher: Dispatcher = this.#agent): Promise<unknown> {
    const at = this.#cur;
    try {
      return await this.#json1(method, path, body, extra, dispatcher);
    } catch (err) {
      this.#failover(at, err);
      throw err;
    }
  }

  async #json1(method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, extra: Record<string, string>, dispatcher: Dispatcher): Promise<unknown> {
    let res: Dispatcher.ResponseData;
    let text: string;
    try {
      res = await request(this.base + path, {
        method,
        headers: this.headers(body === undefined ? extra : { 'content-type': 'application/json', ...extra }),
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      text = await res.body.text();
    } catch (err) {
      throw this.#network(err);
    }
    if (res.statusCode >= 300) throw this.#httpError(res.statusCode, text, method, path);
    try {
      return text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      throw new ApiError('server', `${method} ${path}: the coordinator answered ${res.statusCode} with something that is not JSON`);
    }
  }

  #network(err: unknown): ApiError {
    const e = err as { code?: string; message?: string; cause?: { code?: string } };
    const why = e?.code ?? e?.cause?.code ?? e?.message ?? String(err);
    return new ApiError('unreachable', `cannot reach ${this.base}: ${why}`);
  }

  #httpError(status: number, text: string, method: string, path: string): ApiError {
    let message = text.trim().slice(0, 2000) || `HTTP ${status}`;
    let code: string | undefined;
    try {
      const j = JSON.parse(text) as { message?: unknown; code?: unknown };
      if (typeof j.message === 'string') message = j.message;
      if (typeof j.code === 'string') code = j.code;
    } catch {
      // plain text
    }
    if (status === 401) return new ApiError('unauthorized', `${this.base} refused the token (set MR_TOKEN): ${message}`, status, code);
    if (status >= 500) return new ApiError('server', `${method} ${path}: ${status} ${message}`, status, code);
    return new ApiError('rejected', message, status, code);
  }
}

/** Parses a server-sent-events byte stream into the data fields of its events. */
export async function* sseData(body: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  let buf = '';
  let data: string[] = [];
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buf += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line === '') {
        if (data.length) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  }
  // An event cut off by the end of the stream is dropped (the SSE spec's rule).
}

/** An Api for a command's --coordinator URL; a bad URL is a usage error naming the command. */
export function connect(command: string, coordinator: string, token: string | undefined): Api {
  try {
    return new Api(coordinator, token);
  } catch (err) {
    throw new UsageError(`mr ${command}: --coordinator: ${(err as Error).message}`);
  }
}
