/**
 * `mr submit` and `mr status` against a real coordinator process: bad
 * requests exit 2 with the coordinator's own message and change nothing,
 * --wait exits 0 on success and says where the output is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/vm-cluster.ts';
import { request } from 'undici';
import { Lab, diffLines, sortedLines } from '../src/lab.ts';
import { runMr } from '../src/procs.ts';

async function serverMessage(url: string, token: string | undefined, body: unknown): Promise<{ status: number; message: string }> {
  const res = await request(`${url}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const j = (await res.body.json()) as { message: string };
  return { status: res.statusCode, message: j.message };
}

/** A port nobody listens on (bound, then released). */

async function jobIds(url: string, token: string | undefined): Promise<string[]> {
  const res = await request(`${url}/v1/jobs`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const j = (await res.body.json()) as { jobs: { id: string }[] };
  return j.jobs.map((x) => x.id);
}

test('mr submit: a bad request exits 2 with the coordinator message and submits nothing', async (t) => {
  const lab = new Lab(t);
  // No --exit-when-done here: the coordinator outlives jobs.
  const coord = lab.spawn('coordinator', ['coordinator', '--port', '0', '--data', lab.data, '--input-root', lab.root]);
  const url = (await coord.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  const token = lab.env['MR_TOKEN'];
  const outside = mkdtempSync(join(tmpdir(), 'mr-outside-'));
  t.after(() => rmSync(outside, { recursive: true, force: true }));
  writeFileSync(join(outside, 'secret.txt'), 'not yours');

  const cases: { what: string; args: string[]; body: Record<string, unknown> }[] = [
    { what: 'unknown app', args: ['--app', 'no-such-app', lab.inputs[0]!], body: { app: 'no-such-app', inputs: [lab.corpus[0]] } },
    { what: 'input outside the roots', args: ['--app', 'wc', join(outside, 'secret.txt')], body: { app: 'wc', inputs: [join(outside, 'secret.txt')] } },
    { what: 'missing file', args: ['--app', 'wc', '../pg-missing.txt'], body: { app: 'wc', inputs: [join(lab.root, 'pg-missing.txt')] } },
    { what: 'reduces 0', args: ['--app', 'wc', '--reduces', '0', lab.inputs[0]!], body: { app: 'wc', inputs: [lab.corpus[0]], reduces: 0 } },
  ];
  for (const c of cases) {
    const r = await runMr(['submit', '--coordinator', url, ...c.args], { cwd: lab.cwd, env: lab.env });
    const server = await serverMessage(url, token, c.body);
    assert.ok(server.status >= 400 && server.status < 500, `${c.what}: the coordinator answered ${server.status}`);
    assert.equal(r.code, 2, `${c.what}: exit ${r.code}, stderr ${r.stderr}`);
    assert.equal(r.stdout, '', c.what);
    assert.equal(r.stderr, `mr submit: ${server.message}\n`, c.what);
  }
  assert.deepEqual(await jobIds(url, token), [], 'no job was created');

  const wrong = await runMr(['submit', '--coordinator', url, '--app', 'wc', lab.inputs[0]!], { cwd: lab.cwd, env: { ...lab.env, MR_TOKEN: 'wrong' } });
  assert.equal(wrong.code, 3, wrong.stderr);
  assert.match(wrong.stderr, /refused the token/);

  const usage = await runMr(['submit', '--coordinator', url, lab.inputs[0]!], { cwd: lab.cwd, env: lab.env });
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--app NAME is required/);
});

test('mr submit --wait exits 0 when the job succeeded and names the output; mr status shows it', async (t) => {
  const lab = new Lab(t);
  const want = await lab.reference('wc');
  const coord = lab.spawn('coordinator', ['coordinator', '--port', '0', '--data', lab.data, '--input-root', lab.root]);
  const url = (await coord.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  lab.worker(url);
  lab.worker(url);
  const r = await runMr(['submit', '--coordinator', url, '--app', 'wc', '--reduces', '5', '--output', 'out', '--wait', ...lab.inputs], { cwd: lab.cwd, env: lab.env });
  assert.equal(r.code, 0, r.stderr);
  const [id, summary] = r.stdout.trim().split('\n');
  assert.match(id!, /^[A-Za-z0-9_-]+$/);
  assert.match(summary!, new RegExp(`^job ${id} succeeded in [\\d.]+ s; output in ${join(lab.cwd, 'out').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(5 files\\)$`));
  assert.match(r.stderr, /reduce 5\/5/, 'plain progress lines when not on a terminal');
  assert.equal(diffLines(sortedLines(join(lab.cwd, 'out')), want), undefined);

  const st = await runMr(['status', '--coordinator', url], { cwd: lab.cwd, env: lab.env });
  assert.equal(st.code, 0, st.stderr);
  // The corpus's 8 small files are combined into one split (one map task).
  assert.match(st.stdout, new RegExp(`^${id}\\s+wc\\s+succeeded\\s+1/1\\s+5/5`, 'm'));
  assert.match(st.stdout, /^workers \(2\)$/m);
  const one = await runMr(['status', '--coordinator', url, id!], { cwd: lab.cwd, env: lab.env });
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /state\s+succeeded/);
  assert.match(one.stdout, /output files \(5\):/);
  const missing = await runMr(['status', '--coordinator', url, 'nope'], { cwd: lab.cwd, env: lab.env });
  assert.equal(missing.code, 2);

  // A job that fails: its input vanishes after submission, before any worker reads it
  // (input-not-found is not retryable). --wait exits 1 and says why.
  for (const w of lab.procs.filter((p) => p.name.startsWith('worker'))) w.kill();
  writeFileSync(join(lab.root, 'gone.txt'), 'here now');
  const waiting = lab.spawn('submit --wait', ['submit', '--coordinator', url, '--app', 'wc', '--wait', '../gone.txt']);
  await waiting.waitFor(/^\S+\n/);
  rmSync(join(lab.root, 'gone.txt'));
  lab.worker(url);
  const fe = await waiting.wait();
  assert.equal(fe.code, 1, waiting.stderr);
  assert.match(waiting.stderr, /failed/);
});

test('mr submit and mr status exit 3 when the coordinator is unreachable', async (t) => {
  const lab = new Lab(t);
  const port = await freePort();
  const t0 = Date.now();
  const r = await runMr(['submit', '--coordinator', `http://127.0.0.1:${port}`, '--retry-for', '1s', '--app', 'wc', lab.inputs[0]!], { cwd: lab.cwd, env: lab.env });
  assert.equal(r.code, 3);
  assert.ok(Date.now() - t0 >= 1000, 'mr submit retried for --retry-for before giving up');
  assert.match(r.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}`));
  const s = await runMr(['status', '--coordinator', `http://127.0.0.1:${port}`], { cwd: lab.cwd, env: lab.env });
  assert.equal(s.code, 3);
});
