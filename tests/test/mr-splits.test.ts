/**
 * Inputs beyond the lab's sizes, long tasks, cancel and hostile inputs, with
 * real `mr` processes: split inputs equal `mr seq`, a map longer than the
 * heartbeat timeout is not declared lost, cancel stops running tasks and
 * writes nothing after it, a catastrophic regex finishes, and an input
 * re-pointed outside the root after submit is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { generateText } from '../src/corpus.ts';
import { Cluster as BaseCluster } from '../src/cluster.ts';
import { sortedLines } from '../src/lab.ts';
import { runMr, sleep } from '../src/procs.ts';


/** Plugin apps for these tests (a plugin directory given to coordinator and workers alike). */
const PLUGINS = `
const spinFor = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
export default [
  {
    name: 'spin', description: 'map computes (no await) for option ms, then emits its file name',
    validateOptions: (o) => (/^\\d+$/.test(o.ms ?? '') ? undefined : 'spin needs ms=N'),
    map(f, _c, emit, ctx) { spinFor(Number(ctx.options.ms)); emit(f, '1'); },
    reduce: (_k, v) => String(v.length),
  },
  {
    name: 'slowreduce', description: 'quick map; each reduce waits 3 s before its first output line',
    map(f, _c, emit) { for (const k of ['a', 'b', 'c', 'd', 'e', 'f']) emit(k, f); },
    async reduce(_k, v) { await new Promise((r) => setTimeout(r, 3000)); return String(v.length); },
  },
];
`;

class Cluster extends BaseCluster {
  constructor(t: { after(fn: () => void | Promise<void>): void }) {
    super(t, PLUGINS);
  }
}


test('a file bigger than one split, with 3 workers: wc, indexer, grep, sort equal mr seq (many map tasks); a catastrophic regex finishes', async (t) => {
  const c = new Cluster(t);
  const big = join(c.lab.root, 'big.txt');
  // ~1.5 MB with long lines (words never span a split: splits are line-aligned), and a line of 40,000 a's.
  writeFileSync(big, generateText(99, 700_000) + `${'a'.repeat(40_000)}b\naaaa\n` + generateText(100, 800_000));
  await c.start(['--split-size', '200KiB'], 3);
  const inputs = [big, ...c.lab.corpus];
  const names = inputs.map((p) => `../${basename(p)}`);
  for (const [app, options] of [['wc', {}], ['indexer', {}], ['grep', { pattern: '[Tt]he |^(a+)+$' }], ['sort', {}]] as const) {
    const out = join(c.lab.root, `out-${app}`);
    const id = await c.submit({ app, inputs, names, reduces: 3, output: out, options });
    const job = await c.finished(id);
    assert.equal(job.state, 'succeeded', `${app}: ${job.error}\n${c.lab.describe()}`);
    // grep numbers lines, so its big file is one (streamed) task; the others divide it.
    if (app !== 'grep') assert.ok(job.tasks.map.total >= 8, `${app}: ${job.tasks.map.total} map tasks`);
    const seq = join(c.lab.root, `seq-${app}`);
    const r = await runMr(['seq', '--app', app, '--output', seq, ...Object.entries(options).flatMap(([k, v]) => ['--option', `${k}=${v}`]), ...names], { cwd: c.lab.cwd, env: c.lab.env });
    assert.equal(r.code, 0, r.stderr);
    const want = sortedLines(seq);
    assert.ok(want.length > 10, `${app}: ${want.length} lines`);
    assert.deepEqual(sortedLines(out), want, `${app}: distributed output differs from mr seq`);
  }
});

test('a map that computes longer than the heartbeat timeout is not declared lost (task threads keep the heartbeats on time)', async (t) => {
  const c = new Cluster(t);
  // Three workers for two maps: the idle one, waiting in a poll, would at once be handed a map
  // whose worker was declared lost.
  await c.start(['--heartbeat-timeout', '2s'], 3);
  const id = await c.submit({ app: 'spin', inputs: c.lab.corpus.slice(0, 2), reduces: 1, options: { ms: '5000' } });
  const job = await c.finished(id);
  assert.equal(job.state, 'succeeded', `${job.error}\n${c.lab.describe()}`);
  assert.deepEqual(job.attempts, { started: 3, reissued: 0, failed: 0 }, 'no map was handed out again');
});

test('cancel stops a running task (on the next heartbeat), and nothing is written to the output after the DELETE returns', async (t) => {
  const c = new Cluster(t);
  await c.start([], 1);
  // A map that computes for 60 s: cancelled, the worker is free again at once.
  const spin = await c.submit({ app: 'spin', inputs: [c.lab.corpus[0]], reduces: 1, options: { ms: '60000' } });
  await c.untilApi(`/v1/jobs/${spin}`, (j) => j.tasks.map.running === 1);
  const del = await c.api('DELETE', `/v1/jobs/${spin}`);
  assert.equal(del.status, 200);
  const t0 = Date.now();
  const wc = await c.submit({ app: 'wc', inputs: [c.lab.corpus[1]], reduces: 1 });
  // The only worker takes the next job's map as soon as its cancelled task stopped (the next
  // heartbeat, at most 1 s, then the thread is terminated); had it run on, not for a minute.
  await c.untilApi(`/v1/jobs/${wc}`, (j) => j.tasks.map.running + j.tasks.map.done === 1, 40_000);
  const freeMs = Date.now() - t0;
  t.diagnostic(`worker free again ${freeMs} ms after the DELETE returned`);
  assert.ok(freeMs < 30_000, `the worker took ${freeMs} ms to be free again`);
  assert.equal((await c.finished(wc)).state, 'succeeded');

  // Reduces that are running when the job is cancelled never write their output.
  const out = join(c.lab.root, 'out-cancel');
  const slow = await c.submit({ app: 'slowreduce', inputs: c.lab.corpus.slice(0, 2), reduces: 2, output: out });
  await c.untilApi(`/v1/jobs/${slow}`, (j) => j.tasks.reduce.running === 1);
  await sleep(300);
  assert.equal((await c.api('DELETE', `/v1/jobs/${slow}`)).status, 200);
  const list = (): string[] => {
    try {
      return readdirSync(out).sort();
    } catch {
      return [];
    }
  };
  const atCancel = list();
  assert.deepEqual(atCancel.filter((n) => n.startsWith('mr-out')), [], 'no reduce had finished');
  // Long enough for the running reduce (3 s per key) to have written its file had it not been stopped.
  await sleep(5000);
  const after = list();
  assert.deepEqual(after.filter((n) => !atCancel.includes(n)), [], `files written after the cancel: ${after.join(', ')}`);
  assert.deepEqual(after, [], `partial outputs left: ${after.join(', ')}`);
  const workers = (await c.api('GET', '/v1/workers')).body.workers;
  assert.deepEqual(workers.flatMap((w: any) => w.tasks), []);
});

test('an input re-pointed outside the input root after the job was accepted is refused by the worker', async (t) => {
  const c = new Cluster(t);
  await c.start([], 0);
  const outside = mkdtempSync(join(tmpdir(), 'mr-outside-'));
  t.after(() => rmSync(outside, { recursive: true, force: true }));
  writeFileSync(join(outside, 'secret.txt'), 'apikey zzsecretzz\n');
  const data = join(c.lab.root, 'data.txt');
  writeFileSync(data, 'hello world\n');
  const link = join(c.lab.root, 'link.txt');
  symlinkSync(data, link);
  const viaLink = await c.submit({ app: 'wc', inputs: [link], reduces: 1, output: join(c.lab.root, 'out-link') });
  const swapped = await c.submit({ app: 'wc', inputs: [data], reduces: 1, output: join(c.lab.root, 'out-swapped') });
  // After acceptance: the symlink is re-pointed, and the accepted file itself becomes a symlink out of the root.
  rmSync(link);
  symlinkSync(join(outside, 'secret.txt'), link);
  renameSync(data, join(c.lab.root, 'data-old.txt'));
  symlinkSync(join(outside, 'secret.txt'), data);
  c.worker();
  const a = await c.finished(viaLink);
  const b = await c.finished(swapped);
  // The first job was accepted as data.txt's real path: the re-pointed link is not followed, and
  // data.txt now leads out of the root: both are refused, not retried, and nothing secret is read.
  for (const j of [a, b]) {
    assert.equal(j.state, 'failed', JSON.stringify(j));
    assert.match(j.error, /no longer opens the file accepted with the job/);
    assert.doesNotMatch(j.error, /secret/);
    assert.equal(j.attempts.started, 1);
  }
});
