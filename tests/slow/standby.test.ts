/**
 * The standby coordinator against real processes: an active coordinator with
 * a standby (`mr coordinator --standby-of`), arbitration on the FT storage
 * node, workers and `mr submit --wait` given both addresses. kill -9 the
 * active mid-job: the standby takes over, the job's output equals `mr seq`'s,
 * no acknowledged job is lost, no committed task runs again; the handover
 * time (kill -> the standby's first answer to a worker) is printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { Lab, diffLines } from '../src/lab.ts';
import { sleep, type Proc } from '../src/procs.ts';
import { freePorts } from '../src/vm-cluster.ts';

async function until<T>(what: string, fn: () => Promise<T | undefined>, limitMs = 30_000): Promise<T> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function getJson(lab: Lab, url: string): Promise<{ status: number; body: any }> {
  const res = await request(url, { headers: { authorization: `Bearer ${lab.env['MR_TOKEN']}` } });
  return { status: res.statusCode, body: await res.body.json().catch(() => undefined) };
}

async function pair(lab: Lab, t: { diagnostic(s: string): void }, extra: string[] = []): Promise<{ a: Proc; b: Proc; aUrl: string; bUrl: string; storage: string }> {
  lab.env['MR_PEER_TOKEN'] = randomBytes(12).toString('hex');
  const st = lab.spawn('storage', ['vm', 'storage', '--port', '0', '--data', join(lab.root, 'storage'), '--vm', 'mr-coordinator=coord-a,coord-b'], 120_000);
  const storage = (await st.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  const [pa, pb] = await freePorts(2);
  const common = ['--input-root', lab.root, '--storage', storage, '--suspect', '5s', ...extra];
  const a = lab.spawn('coordinator A', ['coordinator', '--port', String(pa), '--data', join(lab.root, 'a'), '--node-id', 'coord-a', ...common], 120_000);
  const aUrl = (await a.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  const b = lab.spawn('coordinator B', ['coordinator', '--port', String(pb), '--data', join(lab.root, 'b'), '--node-id', 'coord-b', '--standby-of', aUrl, ...common], 120_000);
  const bUrl = (await b.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  await until('the active protected', async () => ((await getJson(lab, `${aUrl}/v1/standby`)).body?.protected === true ? true : undefined));
  t.diagnostic(`storage ${storage}, active ${aUrl}, standby ${bUrl}`);
  return { a, b, aUrl, bUrl, storage };
}

test('kill -9 the active coordinator mid-job: the standby takes over, output equals mr seq, nothing acknowledged lost, no committed task re-run', async (t) => {
  const lab = new Lab(t);
  let passed = false;
  t.after(() => {
    if (passed) return;
    console.log(lab.describe());
    if (process.env['MR_STANDBY_LOGS']) for (const p of lab.procs) writeFileSync(join(process.env['MR_STANDBY_LOGS'], `${p.name.replace(/\W+/g, '-')}-${p.pid}.log`), p.stdout + p.stderr);
  });
  const { a, b, aUrl, bUrl } = await pair(lab, t);
  const both = `${aUrl},${bUrl}`;
  const workers = [1, 2, 3].map(() => lab.spawn('worker', ['worker', '--coordinator', both, '--coordinator-wait', '30s'], 120_000));
  // Jobs acknowledged by the active before the kill (no --wait): the standby must know them all.
  const acked: string[] = [];
  for (let i = 0; i < 3; i++) acked.push(await lab.submit(both, 'wc', ['--reduces', '2', '--output', join(lab.root, `early-${i}`)]));
  const submit = lab.spawn('submit', ['submit', '--coordinator', both, '--app', 'wc', '--reduces', '5', '--split-size', '16KiB', '--no-backup-tasks', '--output', '.', '--wait', ...lab.inputs], 120_000);
  const jobId = (await submit.waitFor(/^(\S+)\n/))[1]!;
  acked.push(jobId);
  // Mid-job: some maps committed, not all.
  const total = await until('maps committed', async () => {
    const j = (await getJson(lab, `${aUrl}/v1/jobs/${jobId}`)).body;
    return j?.tasks?.map?.done >= 3 ? j.tasks.map.total as number : undefined;
  });
  const before = (await getJson(lab, `${aUrl}/v1/standby`)).body;
  assert.equal(before?.protected, true, `the active is protected at the kill: ${JSON.stringify(before)}`);
  const killAt = Date.now();
  a.kill();
  const done = await submit.wait();
  assert.equal(done.code, 0, `mr submit --wait: ${submit.stderr}\n${lab.describe()}`);
  const status = (await getJson(lab, `${bUrl}/v1/standby`)).body;
  assert.equal(status.role, 'active');
  const handoverMs = Date.parse(status.firstWorkerReplyAt) - killAt;
  const liveMs = Date.parse(status.liveSince) - killAt;
  const msg = `standby handover: kill -9 -> standby live ${liveMs} ms, -> first worker served by the standby ${handoverMs} ms (suspect 5s; ${total} maps; machine shared, under load)`;
  t.diagnostic(msg);
  console.log(msg);
  // Output equals the sequential run's.
  const want = await lab.reference('wc');
  const problem = diffLines(lab.sortedOutput(), want);
  assert.equal(problem, undefined, problem);
  // No acknowledged job lost.
  for (const id of acked) {
    const j = await until(`job ${id} finished on the standby`, async () => {
      const r = await getJson(lab, `${bUrl}/v1/jobs/${id}`);
      return r.body?.state === 'succeeded' ? r.body : undefined;
    });
    assert.equal(j.state, 'succeeded');
  }
  // No committed task ran again: one committed attempt per task, none started after it.
  const tasks = (await getJson(lab, `${bUrl}/v1/jobs/${jobId}/tasks?limit=1000`)).body.tasks as { id: string; attempts: { outcome: string; startedAt: string; endedAt?: string }[] }[];
  let attempts = 0;
  for (const task of tasks) {
    attempts += task.attempts.length;
    const committed = task.attempts.filter((x) => x.outcome === 'committed');
    assert.equal(committed.length, 1, `${task.id}: ${JSON.stringify(task.attempts)}`);
    const end = Date.parse(committed[0]!.endedAt ?? committed[0]!.startedAt);
    assert.ok(task.attempts.every((x) => Date.parse(x.startedAt) <= end), `${task.id} ran again after its commit: ${JSON.stringify(task.attempts)}`);
  }
  t.diagnostic(`${tasks.length} tasks, ${attempts} attempts`);
  passed = true;
  for (const w of workers) w.kill();
  void b;
});
