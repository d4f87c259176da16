/**
 * Issue 7, finding 2: a reduce attempt stalled (SIGSTOP) past its lease is
 * re-issued and committed elsewhere; the job's output directory is then
 * emptied and reused by job B; when the stalled worker wakes up (SIGCONT) and
 * finishes its old attempt, B's output must be untouched. Reduce attempts
 * write into the job's work dir; only the coordinator's accept renames the
 * winner into the output directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { Lab } from '../src/lab.ts';
import { sleep } from '../src/procs.ts';

// A test app: map emits (word, input name); the reduce of an attempt started with
// option `slow` sleeps that long first, then writes the values it saw.
const PLUGIN = `
export default {
  name: 'slowtag',
  description: 'test app: tags words with their input; a slow reduce sleeps first',
  validateOptions(o) { return o.slow === undefined || /^[0-9]+$/.test(o.slow) ? undefined : 'slow must be milliseconds'; },
  map(file, contents, emit) { for (const w of contents.toString().split(/\\s+/)) if (w) emit(w, file.split('/').pop()); },
  async reduce(key, values, ctx) {
    if (ctx.options.slow) await new Promise((r) => setTimeout(r, Number(ctx.options.slow)));
    return values.sort().join(',');
  },
};
`;

test('a stalled reduce attempt never touches the output: not its own job\'s, nor a later job\'s in the same directory', async (t) => {
  const lab = new Lab(t);
  const plugins = join(lab.root, 'plugins');
  mkdirSync(plugins);
  writeFileSync(join(plugins, 'slowtag.mjs'), PLUGIN);
  writeFileSync(join(lab.root, 'a.txt'), 'alpha beta\n');
  writeFileSync(join(lab.root, 'b.txt'), 'alpha gamma\n');
  const out = join(lab.root, 'shared-out');
  // The coordinator and the workers load the test app.
  lab.env['MR_PLUGIN_DIR'] = plugins;
  const auth = { authorization: `Bearer ${lab.env['MR_TOKEN']}`, 'content-type': 'application/json' };
  const coordinator = lab.spawn('coordinator', ['coordinator', '--port', '0', '--data', lab.data, '--input-root', lab.root, '--task-timeout', '1s']);
  const url = (await coordinator.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;

  const api = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<any> => {
    const r = await request(`${url}${path}`, { method, headers: auth, ...(body ? { body: JSON.stringify(body) } : {}) });
    return r.body.json();
  };
  const until = async <T>(what: string, fn: () => Promise<T | undefined>, limitMs = 30_000): Promise<T> => {
    const end = Date.now() + limitMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${lab.describe()}`);
      await sleep(50);
    }
  };
  const spawnWorker = (name: string) => lab.spawn(name, ['worker', '--coordinator', url, '--unreachable', '60s'], 90_000);

  const stalled = spawnWorker('worker to be stalled');
  const a = await api('POST', '/v1/jobs', { app: 'slowtag', inputs: [join(lab.root, 'a.txt')], reduces: 1, output: out, options: { slow: '2500' } });
  assert.equal(a.state, 'queued', JSON.stringify(a));
  // Freeze the worker while it runs job A's reduce (inside the slow reduce, before it wrote anything).
  await until('the reduce of job A to be handed out', async () => {
    const ws = (await api('GET', '/v1/workers')).workers as { tasks: { jobId: string; taskId: string }[] }[];
    return ws.some((w) => w.tasks.some((x) => x.jobId === a.id && x.taskId === 'reduce-0')) ? true : undefined;
  });
  await sleep(300);
  process.kill(stalled.pid, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(stalled.pid, 'SIGCONT');
    } catch {
      // gone
    }
  });

  // Its lease runs out; another worker runs the reduce and the coordinator publishes that attempt.
  spawnWorker('second worker');
  const jobA = await until('job A to finish', async () => {
    const j = await api('GET', `/v1/jobs/${a.id}`);
    return j.state === 'running' || j.state === 'queued' ? undefined : j;
  });
  assert.equal(jobA.state, 'succeeded', JSON.stringify(jobA));
  assert.ok(jobA.attempts.reissued >= 1, 'the reduce was re-issued');
  assert.equal(readFileSync(join(out, 'mr-out-0'), 'utf8'), 'alpha a.txt\nbeta a.txt\n');

  // The user clears the directory and runs job B into it.
  rmSync(join(out, 'mr-out-0'));
  const b = await api('POST', '/v1/jobs', { app: 'slowtag', inputs: [join(lab.root, 'b.txt')], reduces: 1, output: out });
  assert.equal(b.state, 'queued', JSON.stringify(b));
  const jobB = await until('job B to finish', async () => {
    const j = await api('GET', `/v1/jobs/${b.id}`);
    return j.state === 'running' || j.state === 'queued' ? undefined : j;
  });
  assert.equal(jobB.state, 'succeeded', JSON.stringify(jobB));
  const expectedB = 'alpha b.txt\ngamma b.txt\n';
  assert.equal(readFileSync(join(out, 'mr-out-0'), 'utf8'), expectedB);

  // The stalled worker wakes up, finishes job A's old attempt and reports it (refused).
  process.kill(stalled.pid, 'SIGCONT');
  await sleep(4000);
  assert.ok(stalled.alive, `the stalled worker is still running\n${lab.describe()}`);
  assert.equal(readFileSync(join(out, 'mr-out-0'), 'utf8'), expectedB, 'job B\'s output was changed by job A\'s abandoned attempt');
  assert.deepEqual(readdirSync(out), ['mr-out-0'], 'nothing else appeared in the output directory');
});
