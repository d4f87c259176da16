/**
 * Worker-served intermediates (paper §3.1): the map output of a job with the
 * worker shuffle stays on the worker that made it, in a directory of its own,
 * and is served by a small HTTP server in the worker process, one reduce
 * partition per request, with byte ranges (a reduce that lost a connection
 * resumes where it stopped). Only the worker credential (MR_WORKER_TOKEN) may
 * read it. Memory: a file is streamed, never held. Disk: at most `maxBytes`
 * of committed output; a map that would start past it fails (retryable) so
 * that another worker runs it. A job's files are deleted once the coordinator
 * says the job is over (success, failure or cancel), and all of them when the
 * worker stops.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createService, Type, type Service } from '@mr/service-kit';
import { ErrorReply, IntermediateParams } from '@mr/mapreduce-protocol';
import { createRegistry } from '@mr/observability';
import { ERR_WORKER_CONFIG } from './errors.ts';

export interface IntermediateStoreOptions {
  /** Parent directory: the store makes `worker-<pid>-<random>` in it (and removes the ones of dead processes). */
  dir: string;
  /** Bytes of committed map output kept at most (default 10 GiB). */
  maxBytes?: number | undefined;
  /** Address and port the server binds (port 0: a free one). */
  host: string;
  port: number;
  /** The base URL reduces are told to fetch from (default http://<host>:<port>; required for a wildcard host). */
  advertise?: string | undefined;
  /** MR_TOKEN and MR_WORKER_TOKEN: with a worker token, every fetch must carry it. */
  token?: string | undefined;
  workerToken?: string | undefined;
}

/** A partition's bytes (streamed as they are; the schema documents the route). */
const PartitionBytes = Type.Unsafe<Readable | string>({ type: 'string', format: 'binary' });

const ATTEMPT_DIR = /^m(0|[1-9][0-9]{0,8})-a([1-9][0-9]{0,8})$/;
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const DEFAULT_SHUFFLE_MAX_BYTES = 10 * 1024 ** 3;

export class IntermediateStore {
  readonly root: string;
  readonly maxBytes: number;
  /** Base URL of the server (what completions report as `location`). */
  location = '';
  #server: Service | undefined;
  /** Committed bytes per job. */
  readonly #bytes = new Map<string, number>();

  private constructor(root: string, maxBytes: number) {
    this.root = root;
    this.maxBytes = maxBytes;
  }

  /** Makes the store's directory and starts its server. */
  static async open(o: IntermediateStoreOptions): Promise<IntermediateStore> {
    const maxBytes = o.maxBytes ?? DEFAULT_SHUFFLE_MAX_BYTES;
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw ERR_WORKER_CONFIG(`shuffle maxBytes must be a positive integer, got ${String(o.maxBytes)}`);
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw ERR_WORKER_CONFIG(`shuffle port must be in [0, 65535], got ${String(o.port)}`);
    const wildcard = o.host === '0.0.0.0' || o.host === '::' || o.host === '';
    if (wildcard && !o.advertise) throw ERR_WORKER_CONFIG(`a shuffle server bound to "${o.host}" needs an advertised URL (--shuffle-advertise): reduces must be sent somewhere real`);
    if (o.advertise !== undefined && !/^https?:\/\/[^/]+\/?$/.test(o.advertise)) throw ERR_WORKER_CONFIG(`shuffle advertise must be a base URL http(s)://host:port, got "${o.advertise}"`);
    await mkdir(o.dir, { recursive: true });
    await removeDeadStores(o.dir);
    const root = join(o.dir, `worker-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(root, { recursive: true });
    const store = new IntermediateStore(root, maxBytes);
    try {
      store.#server = await store.#serve(o);
      const addr = store.#server.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : o.port;
      const host = o.host.includes(':') ? `[${o.host}]` : o.host;
      store.location = (o.advertise ?? `http://${host}:${port}`).replace(/\/$/, '');
    } catch (err) {
      await rm(root, { recursive: true, force: true });
      throw err;
    }
    return store;
  }

  async #serve(o: IntermediateStoreOptions): Promise<Service> {
    const app = await createService({
      name: 'mr-worker-shuffle',
      token: o.token,
      roleTokens: { worker: o.workerToken },
      registry: createRegistry({ service: 'mr-worker-shuffle' }),
      logLevel: false,
    });
    app.get(
      '/v1/intermediates/:jobId/:map/:attempt/:partition',
      { config: { auth: 'worker' }, schema: { params: IntermediateParams, response: { 200: PartitionBytes, 206: PartitionBytes, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 416: ErrorReply } } },
      async (req, reply) => {
        const { jobId, map, attempt, partition } = req.params;
        const file = this.file(jobId, map, attempt, partition);
        let size: number;
        let mtimeMs: number;
        try {
          ({ size, mtimeMs } = await stat(file));
        } catch {
          return reply.status(404).send({ statusCode: 404, code: 'MR_ERR_NO_INTERMEDIATE', error: 'Not Found', message: `no output of ${jobId} map ${map} attempt ${attempt} partition ${partition} here` });
        }
        const range = parseRange(req.headers.range, size);
        if (range === 'bad') {
          return reply.status(416).header('content-range', `bytes */${size}`).send({ statusCode: 416, code: 'MR_ERR_BAD_RANGE', error: 'Range Not Satisfiable', message: `bad range for ${size} bytes` });
        }
        reply.header('accept-ranges', 'bytes').header('etag', `"${size.toString(36)}-${Math.floor(mtimeMs).toString(36)}"`).type('application/octet-stream');
        if (size === 0) return reply.header('content-length', 0).send('');
        const [start, end] = range ?? [0, size - 1];
        if (range) reply.status(206).header('content-range', `bytes ${start}-${end}/${size}`);
        reply.header('content-length', end - start + 1);
        return reply.send(createReadStream(file, { start, end }));
      },
    );
    await app.listen({ host: o.host, port: o.port });
    return app;
  }

  /** Where a map attempt of a job writes its partition files (its assignment's outputDir names the attempt). */
  attemptDir(jobId: string, outputDir: string): string {
    const name = basename(outputDir);
    if (!JOB_ID.test(jobId) || !ATTEMPT_DIR.test(name)) throw new Error(`not a map attempt directory: ${jobId}/${name}`);
    return join(this.root, jobId, name);
  }

  file(jobId: string, map: number, attempt: number, partition: number): string {
    return join(this.root, jobId, `m${map}-a${attempt}`, `mr-${map}-${partition}`);
  }

  /** Bytes of committed output kept now. */
  get usedBytes(): number {
    let n = 0;
    for (const b of this.#bytes.values()) n += b;
    return n;
  }

  /** Jobs with committed output here. */
  get jobs(): string[] {
    return [...this.#bytes.keys()];
  }

  /** A committed map attempt's files now count toward the limit. */
  async committed(jobId: string, files: readonly string[]): Promise<void> {
    let n = 0;
    for (const f of files) n += await stat(f).then((s) => s.size, () => 0);
    this.#bytes.set(jobId, (this.#bytes.get(jobId) ?? 0) + n);
  }

  /** Deletes a job's files (it is over). */
  async drop(jobId: string): Promise<void> {
    if (!JOB_ID.test(jobId)) return;
    this.#bytes.delete(jobId);
    await rm(join(this.root, jobId), { recursive: true, force: true });
  }

  /** Stops the server and deletes every file. */
  async close(): Promise<void> {
    await this.#server?.close();
    this.#bytes.clear();
    await rm(this.root, { recursive: true, force: true });
  }
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` of a file of `size` bytes: [start, end] inclusive; undefined without a Range header; 'bad' when unsatisfiable. */
export function parseRange(header: string | undefined, size: number): [number, number] | undefined | 'bad' {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!(start <= end) || start >= size) return 'bad';
  return [start, end];
}

/** Stores of worker processes that are gone (kill -9 leaves them behind): removed. */
async function removeDeadStores(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^worker-(\d+)-[0-9a-f]{8}$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await rm(join(dir, name), { recursive: true, force: true });
  }
}
