/**
 * The paper's refinements (issue 11) with real `mr` processes: user
 * counters counted once per task however many attempts ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '../src/cluster.ts';
import { runMr } from '../src/procs.ts';

/** Plugin apps for these tests (a plugin directory given to coordinator and workers alike). */
const PLUGINS = `
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
/** True the first time a tag is seen by any worker (a marker file in the shared task cwd). */
const firstTime = (ctx, tag) => {
  try { closeSync(openSync(join(ctx.cwd, 'mr-paper-' + createHash('sha1').update(tag).digest('hex')), 'wx')); return true; } catch { return false; }
};
export default [
  {
    name: 'countfail', input: 'lines',
    description: 'counts lines, map calls, keys and values; every map chunk and every reduce key fails its first attempt after counting',
    map(_f, c, emit, ctx) {
      const lines = c.toString().split('\\n').filter(Boolean);
      ctx.count('lines', lines.length);
      ctx.count('maps');
      for (const l of lines) emit(l, '1');
      if (firstTime(ctx, 'm ' + ctx.input.index + ' ' + ctx.input.offset)) throw new Error('countfail: a first attempt fails after counting');
    },
    reduce(k, v, ctx) {
      ctx.count('keys');
      ctx.count('values', v.length);
      if (firstTime(ctx, 'r ' + k)) throw new Error('countfail: a first attempt fails after counting');
      return String(v.length);
    },
  },
];
`;

test('user counters: counted once per task, only from the committed attempt, though every task failed after counting; in GET /v1/jobs/:id, mr status and /metrics', async (t) => {
  const c = new Cluster(t, PLUGINS);
  // One worker with one slot: a failed attempt and its retry run on the same task thread.
  await c.start([], 1);
  const inputs = [0, 1].map((i) => {
    const f = join(c.lab.root, `lines-${i}.txt`);
    writeFileSync(f, 'alpha\nbeta\ngamma\n'.repeat(100));
    return f;
  });
  const id = await c.submit({ app: 'countfail', inputs, reduces: 1 });
  const job = await c.finished(id);
  assert.equal(job.state, 'succeeded', `${job.error}\n${c.lab.describe()}`);
  // 2 maps fail once each; the reduce fails once per key (3 keys).
  assert.equal(job.attempts.failed, 5, JSON.stringify(job.attempts));
  const user = Object.fromEntries(Object.entries(job.counters as Record<string, number>).filter(([k]) => k.startsWith('user.')));
  assert.deepEqual(user, { 'user.lines': 600, 'user.maps': 2, 'user.keys': 3, 'user.values': 600 });
  assert.equal(job.counters.shuffleBytes, job.counters.intermediateBytes);

  const status = await runMr(['status', '--coordinator', c.url, id], { cwd: c.lab.cwd, env: c.lab.env });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /user\.lines\s+600/);

  const metrics = await (await fetch(`${c.url}/metrics`, { headers: { authorization: `Bearer ${c.lab.env['MR_TOKEN']}` } })).text();
  assert.match(metrics, /mr_job_counters_total\{name="user\.lines"[^}]*\} 600/);
  assert.match(metrics, /mr_job_counters_total\{name="user\.keys"[^}]*\} 3/);
});
