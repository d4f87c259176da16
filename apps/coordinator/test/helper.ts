import { mkdtempSync, mkdirSync, writeFileSync, rmSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Service as FastifyInstance } from '@mr/service-kit';
import { buildCoordinator, type CoordinatorOptions } from '../src/index.ts';

export interface Env {
  dir: string;
  data: string;
  root: string;
  out: string;
  files: string[];
}

/** A temp dir with data/, an input root holding two small files, and out/. */
export function makeEnv(t: TestContext): Env {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mr-coord-')));
  const root = join(dir, 'inputs');
  mkdirSync(root);
  const files = ['a.txt', 'b.txt'].map((n, i) => {
    const p = join(root, n);
    writeFileSync(p, `hello world ${i}\n`);
    return p;
  });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, data: join(dir, 'data'), root, out: join(dir, 'out'), files };
}

export async function build(t: TestContext, env: Env, opts: Partial<CoordinatorOptions> = {}): Promise<FastifyInstance> {
  // splitBytes 16: the env's 14-byte files are neither divided nor combined, one map task each (as the lab's).
  const app = await buildCoordinator({ dataDir: env.data, inputRoots: [env.root], outputRoots: [env.dir], logLevel: false, splitBytes: 16, ...opts });
  t.after(() => app.close());
  await app.ready();
  return app;
}

export async function json(app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({ method, url, ...(body !== undefined ? { payload: body as object } : {}), headers });
  return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as any) : undefined };
}

/** Registers a worker; returns its id and the headers its later requests carry (its secret, the worker token if any). */
export async function registerWorker(app: FastifyInstance, workerToken?: string): Promise<{ id: string; secret: string; headers: Record<string, string> }> {
  const auth: Record<string, string> = workerToken ? { authorization: `Bearer ${workerToken}` } : {};
  const r = await json(app, 'POST', '/v1/workers', { pid: 1, host: 'h', slots: 1 }, auth);
  if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.workerId, secret: r.body.secret, headers: { ...auth, 'x-mr-worker-secret': r.body.secret } };
}
