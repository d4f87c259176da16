import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, realpathSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

const bin = fileURLToPath(new URL('../bin/mr.js', import.meta.url));

function tmp(t: { after(fn: () => void): void }): { dir: string; root: string; files: string[] } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mr-cli-coord-')));
  const root = join(dir, 'in');
  mkdirSync(root);
  const files = [0, 1].map((i) => {
    const p = join(root, `f${i}.txt`);
    writeFileSync(p, `a b c ${i}\n`);
    return p;
  });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, root, files };
}

/** Starts `mr coordinator ARGS`, resolves with the process and the URL it printed. */
async function start(t: { after(fn: () => void): void }, args: string[]): Promise<{ child: ChildProcess; url: string; stdout: () => string }> {
  const child = spawn(process.execPath, [bin, 'coordinator', '--port', '0', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MR_TOKEN: '' } });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /coordinator listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`coordinator exited (${code}) before listening: ${err}`)));
  });
  return { child, url, stdout: () => out };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: r.status, ...((await r.json()) as object) };
}

test('mr coordinator --help describes every option', async () => {
  const { main } = await import('../src/main.ts');
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as any;
  const code = await main(['coordinator', '--help'], { env: {}, stdout: sink, stderr: sink });
  assert.equal(code, 0);
  for (const o of ['--host', '--port', '--data', '--task-timeout', '--input-root', '--output-root', '--exit-when-done', '--log-level', 'MR_WORKER_TOKEN']) assert.ok(out.includes(o), o);
});

test('mr coordinator refuses bad usage with exit code 2', async (t) => {
  const { main } = await import('../src/main.ts');
  let err = '';
  const sink = { write: (s: string) => ((err += s), true) } as any;
  const env = tmp(t);
  assert.equal(await main(['coordinator', '--task-timeout', 'soon'], { env: {}, stdout: sink, stderr: sink }), 2);
  assert.match(err, /--task-timeout: expected a duration/);
  assert.equal(await main(['coordinator', '--input-root', join(env.dir, 'nope')], { env: {}, stdout: sink, stderr: sink }), 2);
  assert.match(err, /is not a directory/);
  assert.equal(await main(['coordinator', '--host', '0.0.0.0'], { env: {}, stdout: sink, stderr: sink }), 2);
  assert.match(err, /without MR_TOKEN/);
  // A client token without the worker credential (or equal to it) would let job submitters act as workers.
  assert.equal(await main(['coordinator', '--data', join(env.dir, 'd')], { env: { MR_TOKEN: 'c' }, stdout: sink, stderr: sink }), 2);
  assert.match(err, /MR_TOKEN is set but MR_WORKER_TOKEN is not/);
  assert.equal(await main(['coordinator', '--data', join(env.dir, 'd')], { env: { MR_TOKEN: 'c', MR_WORKER_TOKEN: 'c' }, stdout: sink, stderr: sink }), 2);
  assert.match(err, /MR_WORKER_TOKEN must differ from MR_TOKEN/);
  assert.equal(await main(['worker', '--coordinator', 'http://127.0.0.1:9'], { env: { MR_TOKEN: 'c' }, stdout: sink, stderr: sink }), 2);
  assert.match(err, /mr worker: MR_TOKEN is set but MR_WORKER_TOKEN is not/);
});

test('with --exit-when-done the coordinator runs a job, streams its events, tells workers to exit, and exits 0', async (t) => {
  const env = tmp(t);
  const data = join(env.dir, 'data');
  const { child, url } = await start(t, ['--data', data, '--input-root', env.root, '--output-root', env.dir, '--exit-when-done']);
  assert.equal((await fetch(`${url}/healthz`)).status, 200);

  const reg = await post(`${url}/v1/workers`, { pid: 1, host: 'test', slots: 1 });
  const w = reg.workerId as string;
  const h = { 'x-mr-worker-secret': reg.secret as string };
  const sub = await post(`${url}/v1/jobs`, { app: 'wc', inputs: env.files, reduces: 1, output: join(env.dir, 'out') });
  assert.equal(sub.status, 201);
  const events = fetch(`${url}/v1/jobs/${sub.id}/events`).then((r) => r.text());

  for (;;) {
    const a = await post(`${url}/v1/workers/${w}/poll`, {}, h);
    if (a.type === 'exit') break;
    assert.ok(a.type === 'map' || a.type === 'reduce', JSON.stringify(a));
    const files = a.type === 'map' ? [`${a.outputDir}/mr-${a.index}-0`] : [];
    if (a.type === 'reduce') {
      mkdirSync(a.outputDir, { recursive: true });
      writeFileSync(`${a.outputDir}/mr-out-0`, 'a 2\n');
    }
    const ack = await post(`${url}/v1/workers/${w}/complete`, { jobId: a.jobId, taskId: a.taskId, attempt: a.attempt, durationMs: 1, files }, h);
    assert.equal(ack.accepted, true);
  }
  const sse = await events;
  const datas = sse.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
  assert.equal(datas[0].type, 'state');
  assert.equal(datas.at(-1).job.state, 'succeeded');
  assert.ok(datas.some((d) => d.type === 'progress'));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  // The journal holds the accepted job and its outcome.
  const journal = readFileSync(join(data, 'journal.jsonl'), 'utf8');
  assert.ok(journal.includes(`"type":"job-accepted","jobId":"${sub.id}"`));
  assert.ok(journal.includes(`"type":"job-finished","jobId":"${sub.id}","state":"succeeded"`));
});

test('SIGTERM answers parked polls with wait (workers outlive a coordinator restart) and stops the coordinator with exit code 0', async (t) => {
  const env = tmp(t);
  const { child, url } = await start(t, ['--data', join(env.dir, 'data'), '--input-root', env.root]);
  const reg = await post(`${url}/v1/workers`, { pid: 1, host: 'test', slots: 1 });
  const parked = post(`${url}/v1/workers/${reg.workerId}/poll`, {}, { 'x-mr-worker-secret': reg.secret });
  // The poll is parked (nothing to do): wait until the coordinator lists the worker.
  for (;;) {
    const list = (await (await fetch(`${url}/v1/workers`)).json()) as { workers: unknown[] };
    if (list.workers.length === 1) break;
    await new Promise((r) => setImmediate(r));
  }
  child.kill('SIGTERM');
  const reply = await parked;
  // A clean stop is not "all work done": workers must keep waiting for the
  // coordinator to come back (issue 7), so a parked poll is told to wait.
  assert.equal(reply.type, 'wait');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});
