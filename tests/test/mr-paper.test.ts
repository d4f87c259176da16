/**
 * The paper's refinements (issue 11) with real `mr` processes: user
 * counters counted once per task however many attempts ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '../src/cluster.ts';
import { runMr } from '../src/procs.ts';
import { sortedLines } from '../src/lab.ts';

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
  {
    name: 'straggler',
    description: 'wc-like; the first attempt of the map over a file whose name contains option slow sleeps option ms (a slow machine)',
    async map(f, c, emit, ctx) {
      if (f.includes(ctx.options.slow) && firstTime(ctx, 'straggle ' + ctx.options.tag + ' ' + f)) await new Promise((r) => setTimeout(r, Number(ctx.options.ms)));
      for (const w of c.toString().split(/[^A-Za-z]+/)) if (w) emit(w, '1');
    },
    reduce: (_k, v) => String(v.length),
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

test('range partitioner: sort with split points sampled at submit is globally sorted across files, equals mr seq, and is balanced; the combiner option changes the shuffle, not the output', async (t) => {
  const c = new Cluster(t, PLUGINS);
  await c.start(['--split-size', '64KiB'], 2);
  const out = join(c.lab.root, 'out-sort');
  const id = await c.submit({ app: 'sort', inputs: c.lab.corpus, reduces: 4, output: out, partitioner: 'range' });
  const job = await c.finished(id);
  assert.equal(job.state, 'succeeded', `${job.error}\n${c.lab.describe()}`);
  assert.equal(job.settings.partitioner.type, 'range');
  assert.equal(job.settings.partitioner.points.length, 3);
  const seq = join(c.lab.root, 'seq-sort');
  const r = await runMr(['seq', '--app', 'sort', '--output', seq, ...c.lab.corpus], { cwd: c.lab.cwd, env: c.lab.env });
  assert.equal(r.code, 0, r.stderr);
  const parts = [0, 1, 2, 3].map((i) => readFileSync(join(out, `mr-out-${i}`), 'utf8'));
  assert.equal(parts.join(''), readFileSync(join(seq, 'mr-out-0'), 'utf8'), 'mr-out-0..3 concatenated equal the sorted sequential output');
  // mr seq's local debug mode, with the same partitioner and reduces, writes the same four files.
  const local = join(c.lab.root, 'seq-sort-range');
  const lr = await runMr(['seq', '--app', 'sort', '--output', local, '--reduces', '4', '--partitioner', 'range', ...c.lab.corpus], { cwd: c.lab.cwd, env: c.lab.env });
  assert.equal(lr.code, 0, lr.stderr);
  for (let i = 0; i < 4; i++) assert.equal(readFileSync(join(local, `mr-out-${i}`), 'utf8'), parts[i], `mr seq --reduces 4 --partitioner range: mr-out-${i}`);
  const counts = parts.map((p) => p.split('\n').length - 1);
  const total = counts.reduce((a, b) => a + b, 0);
  // sort's own partitioner (by first byte) puts nearly every line of these ASCII texts in one or two files.
  assert.ok(Math.max(...counts) < 0.5 * total, `unbalanced: ${counts}`);

  // Refused with a coded 400, nothing created: range over a whole-file app, or more reduces than the range limit.
  for (const body of [{ app: 'nocrash', inputs: c.lab.corpus, partitioner: 'range' }, { app: 'sort', inputs: c.lab.corpus, partitioner: 'range', reduces: 1001 }]) {
    const bad = await c.api('POST', '/v1/jobs', body);
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.code, 'MR_ERR_BAD_OPTIONS');
  }
  assert.equal((await c.api('GET', '/v1/jobs')).body.jobs.length, 1);

  const shuffle: Record<string, number> = {};
  for (const combiner of [true, false]) {
    const o = join(c.lab.root, `out-wc-${combiner}`);
    const j = await c.finished(await c.submit({ app: 'wc', inputs: c.lab.corpus, reduces: 2, output: o, combiner, splitSize: 1 << 20 }));
    assert.equal(j.state, 'succeeded', j.error);
    shuffle[String(combiner)] = j.counters.shuffleBytes;
    assert.equal(j.counters.combineInputRecords !== undefined, combiner);
  }
  t.diagnostic(`wc over the corpus, shuffle bytes: combiner on ${shuffle['true']}, off ${shuffle['false']}`);
  assert.ok(shuffle['true']! < shuffle['false']!, JSON.stringify(shuffle));
});

test('backup tasks: a straggling map gets a backup on an idle worker, the first completion wins and the job ends near the fast workers\' time; without backups it waits for the straggler (decision log, same output)', async (t) => {
  const c = new Cluster(t, PLUGINS);
  await c.start(['--backup-after', '1s'], 3);
  const slow = join(c.lab.root, 'slow.txt');
  writeFileSync(slow, readFileSync(c.lab.corpus[0]!));
  const inputs = [...c.lab.corpus, slow];
  const SLEEP_MS = 6000;
  const runs: Record<string, { ms: number; job: any; out: string }> = {};
  // Warm up: every worker's task threads load the apps on their first task (seconds on a loaded machine).
  const warm = await c.finished(await c.submit({ app: 'straggler', inputs, reduces: 3, options: { slow: 'none', ms: '0', tag: 'warm' } }));
  assert.equal(warm.state, 'succeeded', warm.error);
  for (const backupTasks of [true, false]) {
    const out = join(c.lab.root, `out-straggler-${backupTasks}`);
    // A whole-file app: a map task per file.
    const id = await c.submit({ app: 'straggler', inputs, reduces: 2, output: out, backupTasks, options: { slow: 'slow.txt', ms: String(SLEEP_MS), tag: String(backupTasks) } });
    const job = await c.finished(id);
    runs[String(backupTasks)] = { ms: Date.parse(job.finishedAt) - Date.parse(job.submittedAt), job, out };
    assert.equal(job.state, 'succeeded', `${job.error}\n${c.lab.describe()}`);
  }
  const on = runs['true']!;
  const off = runs['false']!;
  t.diagnostic(`straggler job (one map sleeps ${SLEEP_MS} ms on its first attempt, 3 workers, machine shared and loaded): with backup tasks ${on.ms} ms, without ${off.ms} ms (+${Math.round((100 * (off.ms - on.ms)) / on.ms)} % without)`);
  t.diagnostic(`decision log: ${JSON.stringify(on.job.backups)}`);
  assert.ok(off.ms >= SLEEP_MS, `without backups the job waits for the straggler: ${off.ms} ms`);
  assert.ok(on.ms < SLEEP_MS * 0.75, `with backups the job does not wait for the straggler: ${on.ms} ms`);
  assert.equal(off.job.backups, undefined, 'no backup for a job with backupTasks false');
  const won = on.job.backups.filter((b: any) => b.outcome === 'backup-won');
  assert.equal(won.length, 1, JSON.stringify(on.job.backups));
  assert.match(won[0].reason, /median/);
  assert.notEqual(won[0].backup.workerId, won[0].original.workerId);
  // The same output either way, and only the winners' files in it.
  for (const r of [on, off]) assert.deepEqual(readdirSync(r.out).sort(), ['mr-out-0', 'mr-out-1']);
  assert.deepEqual(sortedLines(on.out), sortedLines(off.out));
  // The loser was told to stop: the straggler's worker takes new work long before its sleep would end.
  assert.ok(on.job.attempts.started <= on.job.tasks.map.total + on.job.tasks.reduce.total + on.job.backups.length);
});
