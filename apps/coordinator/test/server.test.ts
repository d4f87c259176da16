import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeEnv } from './helper.ts';
import { startCoordinator } from '../src/index.ts';

test('startCoordinator listens on a free port, refuses a busy one, and closes cleanly', async (t) => {
  const env = makeEnv(t);
  const a = await startCoordinator({ port: 0, dataDir: env.data, inputRoots: [env.root], logLevel: false });
  t.after(() => a.close());
  assert.match(a.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
  const port = Number(new URL(a.url).port);
  await assert.rejects(startCoordinator({ port, dataDir: join(env.dir, 'other'), inputRoots: [env.root], logLevel: false }), /EADDRINUSE/);
  await assert.rejects(startCoordinator({ port: 0, dataDir: env.data, inputRoots: [env.root], logLevel: false }), /data directory .* is in use by coordinator pid \d+/);
  await assert.rejects(startCoordinator({ host: '0.0.0.0', port: 0, dataDir: join(env.dir, 'x'), logLevel: false }), /without MR_TOKEN/);
  await a.close();
  assert.deepEqual(await a.done, { reason: 'closed' });
});

test('with exitWhenDone a restarted coordinator whose jobs all finished stops by itself', async (t) => {
  const env = makeEnv(t);
  const a = await startCoordinator({ port: 0, dataDir: env.data, inputRoots: [env.root], logLevel: false });
  let secret = '';
  const post = async (p: string, b: object) =>
    (await fetch(`${a.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-mr-worker-secret': secret }, body: JSON.stringify(b) })).json() as Promise<any>;
  const reg = await post('/v1/workers', { pid: 1, host: 'h', slots: 1 });
  secret = reg.secret;
  await post('/v1/jobs', { app: 'wc', inputs: [env.files[0]], reduces: 1 });
  for (const _ of [0, 1]) {
    const x = await post(`/v1/workers/${reg.workerId}/poll`, {});
    if (x.type === 'reduce') {
      mkdirSync(x.outputDir, { recursive: true });
      writeFileSync(join(x.outputDir, 'mr-out-0'), '');
    }
    await post(`/v1/workers/${reg.workerId}/complete`, { jobId: x.jobId, taskId: x.taskId, attempt: x.attempt, durationMs: 1, files: [] });
  }
  await a.close();
  const b = await startCoordinator({ port: 0, dataDir: env.data, inputRoots: [env.root], logLevel: false, exitWhenDone: true, exitGraceMs: 10 });
  t.after(() => b.close());
  assert.deepEqual(await b.done, { reason: 'all jobs done' });
});
