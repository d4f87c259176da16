/**
 * The reduce side of the worker shuffle: fetch partition r of every map's
 * output from the worker that keeps it, into local files the reduce then
 * reads. Each fetch streams to disk (memory bounded by the stream buffers)
 * through undici's retry interceptor (exponential backoff; a body cut short
 * resumes with a Range request). A source still failing after its retries is
 * reported to the coordinator, which answers where the output is now
 * ('retry' from there) or 'abandon' (the map runs again: the reduce is
 * handed out again later).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { Agent, interceptors, type Dispatcher } from 'undici';
import { ROUTES } from '@mr/mapreduce-protocol/routes';
import type { FetchFailure, FetchFailureReply, MapSource } from '@mr/mapreduce-protocol';
import { ERR_FETCH_ABANDONED } from './errors.ts';

export interface ShuffleFetcherOptions {
  /** MR_WORKER_TOKEN: the map workers' servers require it. */
  workerToken?: string | undefined;
  /** Retries of one source inside one fetch (exponential backoff from retryMinMs). Default 3. */
  maxRetries?: number;
  retryMinMs?: number;
  /** Connect and body timeouts of a fetch. Default 2000 / 30000. */
  connectTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Sources fetched at once per reduce. Default 4. */
  parallel?: number;
  /** First wait before fetching the same output again after a reported failure; doubles up to 2 s. Default 200. */
  waitMinMs?: number;
}

export interface FetchJob {
  jobId: string;
  taskId: string;
  attempt: number;
  partition: number;
  sources: MapSource[];
  /** Parent of the private directory the fetched files go to. */
  dir?: string | undefined;
  signal: AbortSignal;
  /** Bytes fetched (the task's progress while it fetches). */
  progress: (bytes: number) => void;
  /** Reports a failed source to the coordinator. */
  report: (body: FetchFailure) => Promise<FetchFailureReply>;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export class ShuffleFetcher {
  readonly #dispatcher: Dispatcher;
  readonly #agent: Agent;
  readonly #token: string | undefined;
  readonly #parallel: number;
  readonly #waitMinMs: number;

  constructor(o: ShuffleFetcherOptions = {}) {
    this.#token = o.workerToken;
    this.#parallel = o.parallel ?? 4;
    this.#waitMinMs = o.waitMinMs ?? 200;
    this.#agent = new Agent({ connectTimeout: o.connectTimeoutMs ?? 2000, bodyTimeout: o.bodyTimeoutMs ?? 30_000, headersTimeout: o.bodyTimeoutMs ?? 30_000, connections: 8 });
    this.#dispatcher = this.#agent.compose(
      interceptors.retry({ maxRetries: o.maxRetries ?? 3, minTimeout: o.retryMinMs ?? 100, maxTimeout: 1000, timeoutFactor: 2, methods: ['GET'], statusCodes: [500, 502, 503, 504] }),
    );
  }

  /**
   * Fetches every source's partition; resolves the local files in map order
   * and a cleanup that deletes them. Throws MR_ERR_FETCH_ABANDONED when the
   * coordinator says the attempt is not current or the signal aborts.
   */
  async fetchAll(job: FetchJob): Promise<{ files: string[]; bytes: number; cleanup: () => Promise<void> }> {
    const dir = await mkdtemp(join(job.dir ?? tmpdir(), `mr-fetch-${job.jobId}-${job.taskId}-a${job.attempt}-`));
    const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
    const sources = [...job.sources].sort((a, b) => a.map - b.map);
    const files = sources.map((s) => join(dir, `m${s.map}`));
    let bytes = 0;
    try {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < sources.length) {
          const i = next++;
          bytes += await this.#fetchOne(job, sources[i]!, files[i]!);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.#parallel, sources.length) }, lane));
      return { files, bytes, cleanup };
    } catch (err) {
      await cleanup();
      throw err;
    }
  }

  /** One source until it is fetched: after a failure the coordinator says where it is now, or that the attempt is over. */
  async #fetchOne(job: FetchJob, first: MapSource, file: string): Promise<number> {
    let source = first;
    let wait = this.#waitMinMs;
    while (true) {
      if (job.signal.aborted) throw ERR_FETCH_ABANDONED(`${job.jobId}/${job.taskId}`);
      let error: string;
      try {
        return await this.#download(job, source, file);
      } catch (err) {
        if (job.signal.aborted) throw ERR_FETCH_ABANDONED(`${job.jobId}/${job.taskId}`);
        error = String((err as { message?: unknown })?.message ?? err).slice(0, 1000);
      }
      const reply = await job.report({ jobId: job.jobId, taskId: job.taskId, attempt: job.attempt, map: source.map, mapAttempt: source.attempt, error });
      if (reply.action === 'abandon' || !reply.source) throw ERR_FETCH_ABANDONED(`${job.jobId}/${job.taskId}`);
      // The same output again after a passing failure: wait a little first; a new one at once.
      if (reply.source.attempt === source.attempt) {
        await sleep(wait, job.signal);
        wait = Math.min(wait * 2, 2000);
      }
      source = reply.source;
    }
  }

  async #download(job: FetchJob, s: MapSource, file: string): Promise<number> {
    const url = new URL(ROUTES.intermediate(job.jobId, s.map, s.attempt, job.partition), `${s.location}/`);
    const res = await this.#dispatcher.request({
      origin: url.origin,
      path: url.pathname,
      method: 'GET',
      headers: this.#token ? { authorization: `Bearer ${this.#token}` } : {},
      signal: job.signal,
    });
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      const text = await res.body.text().catch(() => '');
      throw new Error(`GET ${url.href}: ${res.statusCode} ${text.slice(0, 300)}`);
    }
    let n = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        job.progress(chunk.length);
        cb(null, chunk);
      },
    });
    await pipeline(res.body, count, createWriteStream(file), { signal: job.signal });
    return n;
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => {});
  }
}
