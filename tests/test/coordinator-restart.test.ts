/**
 * The coordinator's durability against real processes: a restart with a long
 * history, kill -9 in the middle of a journal compaction, an idempotent submit
 * whose first answer is lost in a crash, workers that ride out a coordinator
 * outage and a clean restart, and nothing left on disk but a job's outputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { freePort } from '../src/vm-cluster.ts';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { once } from 'node:events';
import { request } from 'undici';
import { Lab } from '../src/lab.ts';
import { alive, runMr, sleep, type Proc } from '../src/procs.ts';
import { isUlidJobId } from '@mr/mapreduce-protocol';

/** A directory for job outputs, outside the input root. */
function outputs(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mr-outputs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}


function api(lab: Lab, url: string) {
  const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${lab.env['MR_TOKEN']}`, ...extra });
  return {
    async get(path: string): Promise<{ status: number; body: any }> {
      const res = await request(url + path, { headers: headers() });
      return { status: res.statusCode, body: await res.body.json() };
    },
    async post(path: string, body: unknown, extra: Record<string, string> = {}): Promise<{ status: number; body: any }> {
      const res = await request(url + path, { method: 'POST', headers: headers({ 'content-type': 'application/json', ...extra }), body: JSON.stringify(body) });
      return { status: res.statusCode, body: await res.body.json() };
    },
    async del(path: string): Promise<number> {
      const res = await request(url + path, { method: 'DELETE', headers: headers() });
      await res.body.dump();
      return res.statusCode;
    },
  };
}

async function startCoordinator(lab: Lab, port: number, extra: string[] = []): Promise<{ proc: Proc; url: string; ms: number }> {
  const t0 = performance.now();
  // Outputs go to directories of their own under the temp dir (see outputs()).
  const proc = lab.spawn('coordinator', ['coordinator', '--port', String(port), '--data', lab.data, '--input-root', lab.root, '--output-root', tmpdir(), ...extra], 120_000);
  const m = await proc.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { proc, url: m[1]!, ms: performance.now() - t0 };
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, limitMs = 60_000): Promise<T> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('a coordinator with 100,000 finished jobs in its history restarts, keeps the newest --retain-jobs, and its journal shrinks to them', async (t) => {
  const lab = new Lab(t);
  mkdirSync(lab.data, { recursive: true });
  const file = join(lab.data, 'journal.jsonl');
  const N = 100_000;
  const out = createWriteStream(file);
  const at = new Date().toISOString();
  out.write(JSON.stringify({ type: 'boot', boot: 1, at }) + '\n');
  for (let i = 1; i <= N; i++) {
    const job = { app: 'wc', inputs: [lab.corpus[0]], reduces: 1, output: `/nonexistent/out-${i}`, workDir: join(lab.data, 'jobs', `j${i}`, 'work'), options: {} };
    const ok = out.write(
      JSON.stringify({ type: 'job-accepted', jobId: `j${i}`, job, idempotency: { key: `k${i}`, fingerprint: 'f' }, at }) +
        '\n' +
        JSON.stringify({ type: 'task-committed', jobId: `j${i}`, taskId: 'map-0', attempt: 1, files: [`/w/j${i}/mr-0-0`], counters: {}, at }) +
        '\n' +
        JSON.stringify({ type: 'job-finished', jobId: `j${i}`, state: 'cancelled', error: 'cancelled by request', at }) +
        '\n',
    );
    if (!ok) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const before = statSync(file).size;

  const port = await freePort();
  const first = await startCoordinator(lab, port);
  const c = api(lab, first.url);
  const jobs = (await c.get('/v1/jobs')).body.jobs as { id: string }[];
  assert.equal(jobs.length, 1000);
  assert.equal(jobs[0]!.id, 'j99001');
  assert.equal((await c.get('/v1/jobs/j1')).status, 410);
  assert.equal((await c.get(`/v1/jobs/j${N}`)).status, 200);
  // A journal of format 1 (ids j<N>, as the coordinator wrote them before ULIDs): the next job gets a ULID.
  const newest = (await c.post('/v1/jobs', { app: 'wc', inputs: [lab.corpus[0]], reduces: 1 })).body.id as string;
  assert.ok(isUlidJobId(newest), newest);
  first.proc.child.kill('SIGTERM');
  await first.proc.wait();
  const after = statSync(file).size;
  assert.ok(after < before / 50, `the journal was compacted at start (${before} -> ${after} bytes)`);

  const second = await startCoordinator(lab, port);
  const c2 = api(lab, second.url);
  // GET /v1/jobs pages (at most 1000 a page): the second page holds the job submitted after the restart.
  const page1 = (await c2.get('/v1/jobs')).body as { jobs: { id: string }[]; next?: string };
  assert.equal(page1.jobs.length, 1000);
  assert.ok(page1.next, 'a second page');
  const page2 = (await c2.get(`/v1/jobs?after=${page1.next}`)).body as { jobs: { id: string }[]; next?: string };
  assert.deepEqual(page2.jobs.map((j) => j.id), [newest]);
  assert.equal((await c2.get(`/v1/jobs/${newest}`)).body.state, 'queued');
  assert.equal((await c2.get('/v1/jobs/j2')).status, 410);
  const replayed = /"records":(\d+)/.exec(second.proc.stdout + second.proc.stderr);
  assert.ok(replayed && Number(replayed[1]) < 1100, `the second start replayed ${replayed?.[1]} records`);
  t.diagnostic(`start with ${N} finished jobs in a ${(before / 1e6).toFixed(1)} MB journal: ${first.ms.toFixed(0)} ms; after compaction (${(after / 1e6).toFixed(2)} MB): ${second.ms.toFixed(0)} ms (process start included)`);
});

test('kill -9 in the middle of a journal compaction loses no acknowledged job', async (t) => {
  const lab = new Lab(t);
  const port = await freePort();
  const acked = new Set<string>();
  const unfinished: string[] = [];
  const temp = join(lab.data, '.journal.jsonl.compact');
  const flags = ['--journal-compact', '20', '--retain-jobs', '3'];
  // Unfinished jobs with many inputs make the snapshot (and each rewrite) big enough to be caught in the act.
  {
    const { proc, url } = await startCoordinator(lab, port, flags);
    const big = Array.from({ length: 2000 }, (_, i) => lab.corpus[i % lab.corpus.length]!);
    for (let i = 0; i < 10; i++) {
      const r = await api(lab, url).post('/v1/jobs', { app: 'wc', inputs: big, reduces: 1 });
      assert.equal(r.status, 201);
      acked.add(r.body.id);
      unfinished.push(r.body.id);
    }
    proc.child.kill('SIGTERM');
    await proc.wait();
  }
  const check = async (url: string, when: string) => {
    const c = api(lab, url);
    // Every acknowledged job is known: kept (200) or retired after newer ones finished (410), never unknown.
    for (const id of acked) assert.ok([200, 410].includes((await c.get(`/v1/jobs/${id}`)).status), `${when}: acknowledged job ${id} is known`);
    for (const id of unfinished) assert.equal((await c.get(`/v1/jobs/${id}`)).body.state, 'queued', `${when}: unfinished job ${id} kept`);
  };
  let midCompaction = 0;
  for (let round = 0; round < 15 && midCompaction < 3; round++) {
    const { proc, url } = await startCoordinator(lab, port, flags);
    await check(url, `round ${round}`);
    const c = api(lab, url);
    let stop = false;
    const submitters = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const r = await c.post('/v1/jobs', { app: 'wc', inputs: [lab.corpus[0]], reduces: 1 });
          if (r.status === 201) acked.add(r.body.id);
          if (r.status === 201 && !stop) await c.del(`/v1/jobs/${r.body.id}`);
        } catch {
          return; // the coordinator was killed
        }
      }
    });
    // Kill the moment a compaction's temporary file exists (or after a while if none starts).
    const deadline = Date.now() + 5000;
    while (!existsSync(temp) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    proc.child.kill('SIGKILL');
    if (existsSync(temp)) midCompaction++;
    stop = true;
    await Promise.all(submitters);
    await proc.exited;
  }
  assert.ok(midCompaction >= 1, 'at least one kill landed in the middle of a compaction');
  const { url } = await startCoordinator(lab, port, flags);
  await check(url, 'at the end');
  assert.ok(!existsSync(temp), 'the leftover compaction file is removed at start');
  const next = await api(lab, url).post('/v1/jobs', { app: 'wc', inputs: [lab.corpus[0]], reduces: 1 });
  // ULIDs of one coordinator increase, across restarts too: the next is newer than every acknowledged one.
  const newestAcked = [...acked].sort().at(-1)!;
  assert.ok(next.body.id > newestAcked, `no acknowledged job id is handed out again (${next.body.id} > ${newestAcked})`);
  t.diagnostic(`${acked.size} acknowledged jobs, ${midCompaction} kills during a compaction`);
});

/**
 * A proxy in front of the coordinator that, for the first job submission,
 * lets the coordinator create the job, then drops the client's connection
 * instead of answering and kill -9s the coordinator (restarting it): the
 * client never learns that its job exists.
 */
async function lossyProxy(upstream: string, onFirstSubmit: () => Promise<void>): Promise<{ url: string; close(): void; submits: number }> {
  const state = { submits: 0, url: '', close: () => srv.close() };
  const srv = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const submit = req.method === 'POST' && req.url === '/v1/jobs';
        if (submit) state.submits++;
        try {
          const headers = { ...req.headers };
          delete headers['host'];
          delete headers['connection'];
          const up = await request(upstream + req.url, { method: req.method as 'POST', headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
          const body = Buffer.from(await up.body.arrayBuffer());
          if (submit && state.submits === 1) {
            req.socket.destroy();
            await onFirstSubmit();
            return;
          }
          res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
          res.end(body);
        } catch {
          req.socket.destroy();
        }
      })();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return state;
}

test('mr submit retries with its Idempotency-Key: a job created while the answer was lost in a coordinator crash exists once', async (t) => {
  const lab = new Lab(t);
  const port = await freePort();
  let coord = await startCoordinator(lab, port);
  const proxy = await lossyProxy(coord.url, async () => {
    coord.proc.child.kill('SIGKILL');
    await coord.proc.exited;
    coord = await startCoordinator(lab, port);
  });
  t.after(() => proxy.close());
  const r = await runMr(['submit', '--coordinator', proxy.url, '--app', 'wc', '--reduces', '1', '--output', 'out', lab.inputs[0]!], { cwd: lab.cwd, env: lab.env });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(proxy.submits >= 2, 'the first answer was lost and mr submit retried');
  const jobs = (await api(lab, coord.url).get('/v1/jobs')).body.jobs as { id: string }[];
  assert.deepEqual(jobs.map((j) => j.id), [r.stdout.trim()], 'exactly one job, the one mr submit printed');
});

test('workers ride out a 10 s coordinator outage (kill -9) and a clean restart; a map finished during the outage is not run again', async (t) => {
  const lab = new Lab(t);
  const port = await freePort();
  let coord = await startCoordinator(lab, port, ['--task-timeout', '60s']);
  // No --coordinator-wait: the product default (minutes).
  const workers = [1, 2].map((i) => lab.spawn(`worker ${i}`, ['worker', '--coordinator', coord.url], 120_000));
  const c = () => api(lab, coord.url);
  const sub = await c().post('/v1/jobs', { app: 'jobcount', inputs: lab.corpus, reduces: 1, output: join(outputs(t), 'out') });
  assert.equal(sub.status, 201);
  const id = sub.body.id as string;
  // Both workers run a map (jobcount maps take 2-5 s): kill the coordinator under them.
  await until('two maps running', async () => ((await c().get('/v1/workers')).body.workers.filter((w: any) => w.tasks.length > 0).length >= 2 ? true : undefined));
  coord.proc.child.kill('SIGKILL');
  await coord.proc.exited;
  await sleep(10_000);
  assert.ok(workers.every((w) => w.alive), `workers outlive a 10 s outage\n${lab.describe()}`);
  coord = await startCoordinator(lab, port, ['--task-timeout', '60s']);
  // The maps that finished during the outage are reported and accepted.
  await until('maps reported after the outage', async () => ((await c().get(`/v1/jobs/${id}`)).body.tasks.map.done >= 2 ? true : undefined));
  // A clean stop does not tell the workers to exit.
  coord.proc.child.kill('SIGTERM');
  assert.equal((await coord.proc.wait()).code, 0);
  await sleep(1000);
  assert.ok(workers.every((w) => w.alive), `workers outlive a clean coordinator stop\n${lab.describe()}`);
  coord = await startCoordinator(lab, port, ['--task-timeout', '60s']);
  const job = await until('the job to finish', async () => {
    const j = (await c().get(`/v1/jobs/${id}`)).body;
    return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
  }, 90_000);
  assert.equal(job.state, 'succeeded', JSON.stringify(job));
  const runs = readdirSync(lab.cwd).filter((n) => n.startsWith('mr-worker-jobcount')).length;
  assert.equal(runs, lab.corpus.length, `each map ran once (${runs} runs for ${lab.corpus.length} maps)\n${JSON.stringify(job)}\n${lab.describe()}`);
  assert.ok(workers.every((w) => w.alive && alive(w.pid)), 'the same worker processes did all of it');
});

test('a finished job leaves nothing on disk but its outputs; orphaned work directories go at start', async (t) => {
  const lab = new Lab(t);
  const orphan = join(lab.data, 'jobs', 'j77', 'work', 'm0-a1');
  mkdirSync(orphan, { recursive: true });
  writeFileSync(join(orphan, 'mr-0-0'), 'left by a crash');
  const port = await freePort();
  const { url } = await startCoordinator(lab, port);
  assert.ok(!existsSync(join(lab.data, 'jobs', 'j77')), 'an orphaned work directory is removed at start');
  const workers = [1, 2].map((i) => lab.spawn(`worker ${i}`, ['worker', '--coordinator', url, '--slots', '2'], 120_000));
  const c = api(lab, url);
  const outDir = outputs(t);
  const output = join(outDir, 'wc-out');
  const sub = await c.post('/v1/jobs', { app: 'wc', inputs: lab.corpus, reduces: 3, output });
  const job = await until('the job to finish', async () => {
    const j = (await c.get(`/v1/jobs/${sub.body.id}`)).body;
    return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
  });
  assert.equal(job.state, 'succeeded');
  await until('the work directory to go', () => (existsSync(join(lab.data, 'jobs', sub.body.id)) ? undefined : true), 5000);
  assert.deepEqual(readdirSync(output).sort(), ['mr-out-0', 'mr-out-1', 'mr-out-2']);
  assert.deepEqual(existsSync(join(lab.data, 'jobs')) ? readdirSync(join(lab.data, 'jobs')) : [], []);
  // A cancelled job's intermediates go too.
  const sub2 = await c.post('/v1/jobs', { app: 'jobcount', inputs: lab.corpus, reduces: 1, output: join(outDir, 'jc-out') });
  await until('a map of the second job to commit', async () => ((await c.get(`/v1/jobs/${sub2.body.id}`)).body.tasks.map.done >= 1 ? true : undefined));
  assert.equal(await c.del(`/v1/jobs/${sub2.body.id}`), 200);
  // Attempts still running finish, are refused, and remove their own directories.
  await until('the cancelled job\'s directory to go', () => (existsSync(join(lab.data, 'jobs', sub2.body.id)) ? undefined : true), 15_000);
  await sleep(6000);
  assert.ok(!existsSync(join(lab.data, 'jobs', sub2.body.id)), 'attempts that ended after the cancel left nothing');
  assert.ok(workers.every((w) => w.alive));
  const leftovers = readFileSync(join(lab.data, 'journal.jsonl'), 'utf8').length;
  t.diagnostic(`journal ${leftovers} bytes after two jobs`);
});
