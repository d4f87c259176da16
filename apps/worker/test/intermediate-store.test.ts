import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntermediateStore, parseRange } from '../src/intermediate-store.ts';
import { ShuffleFetcher } from '../src/shuffle-fetch.ts';

const HOST = process.env['MR_TEST_SHUFFLE_HOST'] ?? '127.0.0.1';

test('parseRange: the forms a resuming client sends, and unsatisfiable ones', () => {
  assert.equal(parseRange(undefined, 10), undefined);
  assert.deepEqual(parseRange('bytes=0-', 10), [0, 9]);
  assert.deepEqual(parseRange('bytes=4-', 10), [4, 9]);
  assert.deepEqual(parseRange('bytes=2-5', 10), [2, 5]);
  assert.deepEqual(parseRange('bytes=2-50', 10), [2, 9]);
  assert.deepEqual(parseRange('bytes=-3', 10), [7, 9]);
  for (const bad of ['bytes=10-', 'bytes=5-2', 'bytes=-', 'items=0-1', 'bytes=0-1,3-4']) assert.equal(parseRange(bad, 10), 'bad', bad);
});

test('the store serves one partition of one attempt to the worker credential only, with byte ranges; a fetcher reads it; drop and close delete the files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mr-store-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A dead worker's store left behind (kill -9) is removed when a store opens beside it.
  mkdirSync(join(dir, 'worker-999999999-0123abcd'));
  const store = await IntermediateStore.open({ dir, host: HOST, port: 0, token: 'client-token', workerToken: 'worker-token', maxBytes: 1000 });
  t.after(() => store.close());
  assert.deepEqual(readdirSync(dir), [store.root.slice(dir.length + 1)]);
  const attempt = store.attemptDir('j1', '/data/jobs/j1/work/m3-a2');
  mkdirSync(attempt, { recursive: true });
  writeFileSync(join(attempt, 'mr-3-1'), '0123456789');
  writeFileSync(join(attempt, 'mr-3-0'), 'zero');
  await store.committed('j1', [join(attempt, 'mr-3-1'), join(attempt, 'mr-3-0')]);
  assert.equal(store.usedBytes, 14);
  assert.throws(() => store.attemptDir('j1', '/x/../../etc'), /not a map attempt/);

  const url = `${store.location}/v1/intermediates/j1/3/2/1`;
  assert.equal((await fetch(url)).status, 401);
  assert.equal((await fetch(url, { headers: { authorization: 'Bearer client-token' } })).status, 401, 'a client token is not a worker credential');
  const auth = { authorization: 'Bearer worker-token' };
  const whole = await fetch(url, { headers: auth });
  assert.equal(whole.status, 200);
  assert.equal(await whole.text(), '0123456789');
  const part = await fetch(url, { headers: { ...auth, range: 'bytes=4-' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), 'bytes 4-9/10');
  assert.equal(await part.text(), '456789');
  assert.equal((await fetch(url, { headers: { ...auth, range: 'bytes=20-' } })).status, 416);
  assert.equal((await fetch(`${store.location}/v1/intermediates/j1/3/1/1`, { headers: auth })).status, 404, 'another attempt');
  assert.equal((await fetch(`${store.location}/v1/intermediates/j1/3/2/x`, { headers: auth })).status, 400);

  const fetcher = new ShuffleFetcher({ workerToken: 'worker-token' });
  t.after(() => fetcher.close());
  const reports: unknown[] = [];
  const got = await fetcher.fetchAll({
    jobId: 'j1', taskId: 'reduce-1', attempt: 1, partition: 1, sources: [{ map: 3, attempt: 2, location: store.location }], signal: new AbortController().signal,
    progress: () => {}, report: async (b) => (reports.push(b), { action: 'abandon' }),
  });
  assert.equal(got.bytes, 10);
  assert.equal(reports.length, 0);
  await got.cleanup();

  // A source that cannot be fetched is reported; the coordinator's new location is used.
  const moved = await fetcher.fetchAll({
    jobId: 'j1', taskId: 'reduce-0', attempt: 1, partition: 0, sources: [{ map: 3, attempt: 1, location: store.location }], signal: new AbortController().signal,
    progress: () => {}, report: async (b) => (reports.push(b), { action: 'retry', source: { map: 3, attempt: 2, location: store.location } }),
  });
  assert.equal(moved.bytes, 4);
  assert.equal(reports.length, 1);
  await moved.cleanup();

  await store.drop('j1');
  assert.equal(existsSync(join(store.root, 'j1')), false);
  assert.equal(store.usedBytes, 0);
});
