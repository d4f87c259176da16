/**
 * Worker-served intermediates (issue 11, paper §3.1/§3.3) with real `mr`
 * processes: map output stays on the worker that made it and reduces fetch it
 * from there; kill -9 a worker whose maps completed before the reduces fetched
 * their output: those maps run again elsewhere, the reduces are told the new
 * location, the output equals `mr seq`, and the job's API says which maps ran
 * again and why. Every address comes from configuration (SHUFFLE_HOST), so the
 * same test can run across network namespaces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '../src/cluster.ts';
import { runMr, sleep, type Proc } from '../src/procs.ts';
import { sortedLines } from '../src/lab.ts';

/** The address each worker serves its map output on (the hosts harness gives each its own). */
const SHUFFLE_HOST = process.env['MR_TEST_SHUFFLE_HOST'] ?? '127.0.0.1';

/** wc over words; the map over a file named *gate* waits until the file options.gate exists (so the test decides when the map phase ends). */
const PLUGINS = `
import { existsSync } from 'node:fs';
export default [
  {
    name: 'gated',
    description: 'wc; the map over a file whose name contains "gate" waits for the file named by option gate',
    async map(f, c, emit, ctx) {
      if (f.includes('gate')) while (!existsSync(ctx.options.gate)) await new Promise((r) => setTimeout(r, 20));
      for (const w of c.toString().split(/[^A-Za-z]+/)) if (w) emit(w, '1');
    },
    reduce: (_k, v) => String(v.length),
  },
];
`;

test('worker shuffle: kill -9 a worker whose maps completed before the reduces fetched them; its maps run again, the output equals mr seq, the API says why; intermediates deleted after the job', async (t) => {
  const c = new Cluster(t, PLUGINS);
  // Time limits for a loaded 2-core machine (3 workers took 30-40 s to register at load 20); the job itself takes seconds.
  await c.start(['--shuffle', 'worker', '--heartbeat-timeout', '3s'], 0, 180_000);
  const workers: { proc: Proc; dir: string }[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = join(c.lab.root, `shuffle-${i}`);
    workers.push({ proc: c.lab.worker(c.url, 150_000, ['--coordinator-wait', '60s', '--shuffle-host', SHUFFLE_HOST, '--shuffle-port', '0', '--shuffle-dir', dir]), dir });
  }
  const t0 = Date.now();
  const at = (what: string): void => t.diagnostic(`${what} at ${Date.now() - t0} ms`);
  await c.untilApi('/v1/workers', (b) => b.workers.length === 3, 60_000);
  at('3 workers registered');
  const gateFile = join(c.lab.root, 'gate-open');
  const gated = join(c.lab.root, 'gate.txt');
  writeFileSync(gated, readFileSync(c.lab.corpus[0]!));
  const inputs = [...c.lab.corpus.slice(0, 4), gated];
  const out = join(c.lab.root, 'out');
  const id = await c.submit({ app: 'gated', inputs, reduces: 2, output: out, options: { gate: gateFile } });

  // Every map but the gated one commits; pick a worker that committed maps and does not run the gated map.
  const tasks = await c.untilApi(`/v1/jobs/${id}/tasks?limit=1000`, (b) => b.tasks.filter((x: any) => x.phase === 'map' && x.state === 'done').length === inputs.length - 1);
  at('maps but the gated one committed');
  const gatedTask = tasks.tasks.find((x: any) => x.phase === 'map' && x.state !== 'done');
  const busy = gatedTask.attempts.find((a: any) => a.outcome === 'running')?.workerId;
  const committedBy = new Map<string, number>();
  for (const x of tasks.tasks) for (const a of x.attempts) if (x.phase === 'map' && a.outcome === 'committed') committedBy.set(a.workerId, (committedBy.get(a.workerId) ?? 0) + 1);
  const victimId = [...committedBy.keys()].find((w) => w !== busy);
  assert.ok(victimId, `no idle worker with committed maps: ${JSON.stringify([...committedBy])}, gated map on ${busy}`);
  const victimPid = (await c.api('GET', '/v1/workers')).body.workers.find((w: any) => w.id === victimId).pid;
  const victim = workers.find((w) => w.proc.pid === victimPid)!;
  // Its output is there, served by it.
  assert.ok(readdirSync(victim.dir).length === 1, 'the victim keeps a store');
  victim.proc.kill(); // SIGKILL
  await victim.proc.exited;
  // The map phase ends now: the reduces start with sources on the dead worker.
  writeFileSync(gateFile, '');
  at('victim killed, gate open');
  const started = Date.now();
  // Without re-execution (mr coordinator --drill-unsafe --no-map-reexecution) the reduces never get the lost output: this times out.
  const job = await c.finished(id, 40_000);
  const ms = Date.now() - started;
  assert.equal(job.state, 'succeeded', `${job.error}\n${c.lab.describe()}`);
  assert.equal(job.settings?.shuffle, 'worker');
  // The API shows the re-executed maps and why.
  const lost = (job.reexecutions ?? []) as { taskId: string; workerId: string; reason: string }[];
  assert.equal(lost.length, committedBy.get(victimId), `every map the victim committed ran again: ${JSON.stringify(job.reexecutions)}`);
  for (const r of lost) {
    assert.equal(r.workerId, victimId);
    assert.match(r.reason, new RegExp(`worker ${victimId} lost|fetch failures`));
  }
  assert.equal(job.counters.mapReexecutions, lost.length);
  t.diagnostic(`job finished ${ms} ms after the kill and the gate; re-executed ${lost.length} maps: ${lost.map((r) => `${r.taskId} (${r.reason})`).join('; ')}; fetch failures ${job.counters.fetchFailures ?? 0}`);

  const seq = join(c.lab.root, 'seq');
  const r = await runMr(['seq', '--app', 'gated', '--output', seq, '--option', `gate=${gateFile}`, ...inputs], { cwd: c.lab.cwd, env: c.lab.env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(sortedLines(out), sortedLines(seq), 'output equals mr seq');

  // The survivors delete the job's map output once it is over; the victim's store is left for the next worker started there.
  for (const w of workers.filter((x) => x !== victim)) {
    const end = Date.now() + 10_000;
    const jobDirs = (): string[] => readdirSync(w.dir).flatMap((s) => (existsSync(join(w.dir, s, id)) ? [join(w.dir, s, id)] : []));
    while (jobDirs().length > 0 && Date.now() < end) await sleep(100);
    assert.deepEqual(jobDirs(), [], 'intermediates deleted after the job');
  }
});
