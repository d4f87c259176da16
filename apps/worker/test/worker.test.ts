import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PollReply, MapAssignment, ReduceAssignment } from '@mr/mapreduce-protocol';
import { registerApp } from '@mr/mapreduce-apps';
import { Worker, CoordinatorClient, type LogLevel } from '../src/index.ts';
import { FakeCoordinator } from './fake-coordinator.ts';

function tmp(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'mr-worker-test-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function fake(t: { after(fn: () => Promise<void>): void }): Promise<FakeCoordinator> {
  const f = await new FakeCoordinator().listen();
  t.after(() => f.close());
  return f;
}

function capture(): { lines: string[]; log: (level: LogLevel, msg: string) => void } {
  const lines: string[] = [];
  return { lines, log: (level, msg) => lines.push(`${level} ${msg}`) };
}

function mapTask(over: Partial<MapAssignment> & Pick<MapAssignment, 'input' | 'outputDir'>): MapAssignment {
  return { type: 'map', jobId: 'j1', taskId: 'map-0', index: 0, attempt: 1, app: 'wc', options: {}, reduces: 2, leaseMs: 10_000, ...over };
}

function reduceTask(over: Partial<ReduceAssignment> & Pick<ReduceAssignment, 'inputs' | 'outputDir' | 'index'>): ReduceAssignment {
  return { type: 'reduce', jobId: 'j1', taskId: `reduce-${over.index}`, attempt: 1, app: 'wc', options: {}, reduces: 2, leaseMs: 10_000, ...over };
}

let appSeq = 0;
/** An app registered in this process: workers that run it use execution 'inline' (task threads load only the built-in and plugin apps). */
function testApp(map: (filename: string) => void | Promise<void>): string {
  const name = `test-app-${process.pid}-${++appSeq}`;
  registerApp({ name, description: 'worker test', map: async (f, _c, emit) => { await map(f); emit('k', '1'); }, reduce: (_k, v) => String(v.length) });
  return name;
}

test('runs a map then its reduces, reports completions with the attempt, and exits 0 when told', async (t) => {
  const dir = tmp(t);
  const coord = await fake(t);
  const input = join(dir, 'in.txt');
  writeFileSync(input, 'hello world, hello Ünïcode\nworld hello\n');
  const queue: PollReply[] = [mapTask({ input, outputDir: join(dir, 'job', 'map-0-a3'), attempt: 3 })];
  coord.handlers.poll = () => queue.shift() ?? { type: 'exit', reason: 'all work done' };
  coord.handlers.complete = (body) => {
    if (body.taskId === 'map-0') {
      for (const r of [0, 1]) queue.push(reduceTask({ index: r, inputs: [body.files[r]], outputDir: join(dir, 'out'), attempt: 1 }));
    }
    return { accepted: true };
  };
  const worker = new Worker({ coordinator: coord.url, cwd: dir, log: () => {} });
  const exit = await worker.run();
  assert.deepEqual(exit, { code: 0, reason: 'all work done' });

  const completes = coord.of('complete').map((r) => r.body);
  assert.deepEqual(completes.map((c) => [c.taskId, c.attempt]), [['map-0', 3], ['reduce-0', 1], ['reduce-1', 1]]);
  assert.equal(completes[0].files.length, 2);
  for (const f of completes[0].files) assert.ok(f.startsWith(join(dir, 'job', 'map-0-a3')), f);
  assert.deepEqual(completes[1].files, [join(dir, 'out', 'mr-out-0')]);
  const lines = readdirSync(join(dir, 'out'))
    .filter((f) => f.startsWith('mr-out-'))
    .flatMap((f) => readFileSync(join(dir, 'out', f), 'utf8').split('\n'))
    .filter(Boolean)
    .sort();
  assert.deepEqual(lines, ['hello 3', 'world 2', 'Ünïcode 1'].sort());
  assert.equal(worker.tasksDone, 3);
  const reg = coord.of('register')[0]!.body;
  assert.equal(reg.pid, process.pid);
  assert.equal(reg.slots, 1);
});

test('exits 1 with one clear line when the coordinator cannot be reached at all', async (t) => {
  const coord = await fake(t);
  const url = coord.url;
  await coord.close();
  const { lines, log } = capture();
  const started = Date.now();
  const exit = await new Worker({ coordinator: url, unreachableMs: 400, log }).run();
  const took = Date.now() - started;
  assert.equal(exit.code, 1);
  assert.ok(took >= 400 && took < 5000, `took ${took} ms`);
  assert.deepEqual(lines.filter((l) => l.startsWith('error')), [`error coordinator ${url} unreachable for 0.4s; exiting`]);
});

test('exits 1 when the coordinator vanishes while a poll is held', async (t) => {
  const coord = await fake(t);
  let held = 0;
  coord.handlers.poll = () => {
    held++;
    return new Promise(() => {}); // never answers
  };
  const { lines, log } = capture();
  const worker = new Worker({ coordinator: coord.url, unreachableMs: 300, log });
  const done = worker.run();
  while (held === 0) await new Promise((r) => setTimeout(r, 10));
  await coord.close();
  const exit = await done;
  assert.equal(exit.code, 1);
  assert.match(lines.at(-1)!, /^error coordinator http:\/\/127\.0\.0\.1:\d+ unreachable for 0\.3s; exiting$/);
});

test('keeps polling through a 503 answer without giving up', async (t) => {
  const coord = await fake(t);
  let polls = 0;
  coord.handlers.poll = () => {
    polls++;
    if (polls === 1) return { status: 503, body: { statusCode: 503, code: 'X', error: 'Service Unavailable', message: 'busy' } };
    if (polls === 2) return { type: 'wait' };
    return { type: 'exit', reason: 'done' };
  };
  const exit = await new Worker({ coordinator: coord.url, unreachableMs: 3000, log: () => {} }).run();
  assert.deepEqual(exit, { code: 0, reason: 'done' });
  assert.equal(polls, 3);
});

test('a completion that failed with 503 is retried, and the task is not run again', async (t) => {
  const dir = tmp(t);
  const coord = await fake(t);
  let runs = 0;
  const app = testApp(() => void runs++);
  writeFileSync(join(dir, 'in'), 'x');
  const queue: PollReply[] = [mapTask({ app, input: join(dir, 'in'), outputDir: join(dir, 'm') })];
  coord.handlers.poll = () => queue.shift() ?? { type: 'exit', reason: 'done' };
  let completes = 0;
  coord.handlers.complete = () => (++completes === 1 ? { status: 503, body: { statusCode: 503, code: 'X', error: 'x', message: 'try later' } } : { accepted: true });
  const exit = await new Worker({ coordinator: coord.url, execution: 'inline', cwd: dir, log: () => {} }).run();
  assert.equal(exit.code, 0);
  assert.equal(runs, 1);
  assert.equal(completes, 2);
  const bodies = coord.of('complete').map((r) => r.body);
  assert.deepEqual(bodies[0], bodies[1], 'the retry repeats the same completion (same attempt)');
});

test('a stale-attempt answer is data: the worker carries on and takes the next task', async (t) => {
  const dir = tmp(t);
  const coord = await fake(t);
  const app = testApp(() => {});
  writeFileSync(join(dir, 'in'), 'x');
  const queue: PollReply[] = [
    mapTask({ app, input: join(dir, 'in'), outputDir: join(dir, 'a1'), attempt: 1 }),
    mapTask({ app, input: join(dir, 'in'), outputDir: join(dir, 'a2'), attempt: 2 }),
  ];
  coord.handlers.poll = () => queue.shift() ?? { type: 'exit', reason: 'done' };
  coord.handlers.complete = (b) => (b.attempt === 1 ? { accepted: false, reason: 'stale-attempt' } : { accepted: true });
  const { lines, log } = capture();
  const exit = await new Worker({ coordinator: coord.url, execution: 'inline', cwd: dir, log }).run();
  assert.equal(exit.code, 0);
  assert.deepEqual(coord.of('complete').map((r) => r.body.attempt), [1, 2]);
  assert.equal(lines.filter((l) => l.startsWith('error') || l.startsWith('warn')).length, 0, lines.join('\n'));
});

test('an exception in app code is reported with /fail as retryable; an unknown app as not retryable', async (t) => {
  const dir = tmp(t);
  const coord = await fake(t);
  const app = testApp(() => {
    throw new Error('bad record at line 7');
  });
  writeFileSync(join(dir, 'in'), 'x');
  const queue: PollReply[] = [
    mapTask({ app, input: join(dir, 'in'), outputDir: join(dir, 'a'), attempt: 4 }),
    mapTask({ app: 'no-such-app', taskId: 'map-1', index: 1, input: join(dir, 'in'), outputDir: join(dir, 'b') }),
  ];
  coord.handlers.poll = () => queue.shift() ?? { type: 'exit', reason: 'done' };
  const exit = await new Worker({ coordinator: coord.url, execution: 'inline', cwd: dir, log: () => {} }).run();
  assert.equal(exit.code, 0);
  const fails = coord.of('fail').map((r) => r.body);
  assert.equal(fails.length, 2);
  assert.equal(fails[0].attempt, 4);
  assert.equal(fails[0].retryable, true);
  assert.match(fails[0].error, /bad record at line 7/);
  assert.equal(fails[1].taskId, 'map-1');
  assert.equal(fails[1].retryable, false);
  assert.match(fails[1].error, /no-such-app/);
  assert.equal(coord.of('complete').length, 0);
});

test('--slots 2 runs two tasks at once', async (t) => {
  const dir = tmp(t);
  const coord = await fake(t);
  let inside = 0;
  let maxInside = 0;
  let release!: () => void;
  const bothIn = new Promise<void>((r) => (release = r));
  const app = testApp(async () => {
    inside++;
    maxInside = Math.max(maxInside, inside);
    if (inside === 2) release();
    // With one slot this would never resolve; the test's own timeout would fail it.
    await bothIn;
    inside--;
  });
  writeFileSync(join(dir, 'in'), 'x');
  const queue: PollReply[] = [0, 1].map((i) => mapTask({ app, taskId: `map-${i}`, index: i, input: join(dir, 'in'), outputDir: join(dir, `m${i}`) }));
  // Like the real coordinator, say exit only once every task was reported
  // (a worker told to exit drops what it still runs: that work was done elsewhere).
  let reported!: () => void;
  const allReported = new Promise<void>((r) => (reported = r));
  coord.handlers.complete = () => {
    if (coord.of('complete').length === 2) reported();
    return { accepted: true };
  };
  coord.handlers.poll = async () => queue.shift() ?? (await allReported, { type: 'exit', reason: 'done' });
  const exit = await new Worker({ coordinator: coord.url, execution: 'inline', cwd: dir, slots: 2, log: () => {} }).run();
  assert.equal(exit.code, 0);
  assert.equal(maxInside, 2);
  assert.equal(coord.of('complete').length, 2);
  assert.equal(coord.of('register')[0]!.body.slots, 2);
});

test('heartbeats while a task runs; a task the coordinator says to abandon is not reported', async (t) => {
  const dir = tmp(t);
  const coord = await fake(t);
  coord.heartbeatIntervalMs = 30;
  let beats = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const app = testApp(() => gate);
  let released = false;
  coord.handlers.heartbeat = (b) => {
    beats++;
    // The map waits on the gate before it read anything: no progress until it is released
    // (after that, a beat may come while the finished map still writes its output).
    if (!released) assert.deepEqual(b.tasks, [{ jobId: 'j1', taskId: 'map-0', attempt: 5, progress: 0 }]);
    if (beats === 3) {
      setTimeout(() => {
        released = true;
        release();
      }, 50);
    }
    return { abandon: beats >= 2 ? b.tasks : [] };
  };
  writeFileSync(join(dir, 'in'), 'x');
  const queue: PollReply[] = [mapTask({ app, input: join(dir, 'in'), outputDir: join(dir, 'm'), attempt: 5 })];
  coord.handlers.poll = async () => queue.shift() ?? { type: 'exit', reason: 'done' };
  const exit = await new Worker({ coordinator: coord.url, execution: 'inline', cwd: dir, log: () => {} }).run();
  assert.equal(exit.code, 0);
  assert.ok(beats >= 3);
  assert.equal(coord.of('complete').length, 0);
  assert.equal(coord.of('fail').length, 0);
});

test('heartbeats report each attempt\'s progress (input bytes read in its task thread), growing as the task works', async (t) => {
  const dir = tmp(t);
  const coord = await fake(t);
  coord.heartbeatIntervalMs = 20;
  const input = join(dir, 'in.txt');
  // 24 MiB of words: a wc map over it takes long enough for several heartbeats.
  writeFileSync(input, 'lorem ipsum dolor sit amet consectetur\n'.repeat(24 * 1024 * 1024 / 39));
  const seen: number[] = [];
  coord.handlers.heartbeat = (b) => {
    seen.push(b.tasks[0]!.progress!);
    return { abandon: [] };
  };
  const queue: PollReply[] = [mapTask({ input, split: [{ path: input, name: input, index: 0, start: 0 }], outputDir: join(dir, 'm'), reduces: 1 })];
  coord.handlers.poll = () => queue.shift() ?? { type: 'exit', reason: 'done' };
  const exit = await new Worker({ coordinator: coord.url, cwd: dir, log: () => {} }).run();
  assert.equal(exit.code, 0);
  assert.equal(coord.of('complete').length, 1);
  assert.ok(seen.length >= 3, `heartbeats while the map ran: ${seen.length}`);
  assert.deepEqual([...seen].sort((x, y) => x - y), seen, 'progress never goes down');
  assert.ok(seen.at(-1)! > seen[0]!, `progress grew: ${seen.join(' ')}`);
  assert.ok(seen.at(-1)! <= 24 * 1024 * 1024, 'counted in bytes read');
});

test('sends the bearer token; a refused token ends the worker with code 3', async (t) => {
  const coord = await fake(t);
  coord.handlers.register = () => ({ status: 401, body: { statusCode: 401, code: 'MR_ERR_UNAUTHORIZED', error: 'Unauthorized', message: 'missing or wrong bearer token' } });
  const { lines, log } = capture();
  const exit = await new Worker({ coordinator: coord.url, token: 's3cret', log }).run();
  assert.equal(exit.code, 3);
  assert.equal(coord.of('register')[0]!.auth, 'Bearer s3cret');
  assert.match(lines.join('\n'), /refused the token: missing or wrong bearer token/);
});

test('registers again when the coordinator forgets the worker (404 on poll)', async (t) => {
  const coord = await fake(t);
  let polls = 0;
  coord.handlers.poll = (workerId) => {
    polls++;
    if (workerId === 'w1') return { status: 404, body: { statusCode: 404, code: 'MR_ERR_UNKNOWN_WORKER', error: 'Not Found', message: 'unknown worker w1' } };
    return { type: 'exit', reason: 'done' };
  };
  const exit = await new Worker({ coordinator: coord.url, log: () => {} }).run();
  assert.equal(exit.code, 0);
  assert.equal(coord.of('register').length, 2);
  assert.deepEqual(coord.of('poll').map((r) => r.workerId), ['w1', 'w2']);
  // Every request of a worker id carries the secret its registration returned.
  assert.deepEqual(coord.of('poll').map((r) => r.secret), ['secret-of-w1', 'secret-of-w2']);
  assert.equal(coord.of('register')[0]!.secret, undefined);
  assert.equal(polls, 2);
});

test('stop() reports the running task as a retryable failure and resolves 0', async (t) => {
  const dir = tmp(t);
  const coord = await fake(t);
  let started!: () => void;
  const isRunning = new Promise<void>((r) => (started = r));
  const app = testApp(() => {
    started();
    return new Promise<void>(() => {});
  });
  writeFileSync(join(dir, 'in'), 'x');
  const queue: PollReply[] = [mapTask({ app, input: join(dir, 'in'), outputDir: join(dir, 'm'), attempt: 2 })];
  coord.handlers.poll = () => queue.shift() ?? new Promise(() => {});
  // Two slots: one runs the task, the other is in a held poll when stop() aborts it.
  const worker = new Worker({ coordinator: coord.url, execution: 'inline', cwd: dir, slots: 2, log: () => {} });
  const done = worker.run();
  await isRunning;
  while (coord.of('poll').length < 2) await new Promise((r) => setTimeout(r, 10));
  await worker.stop('interrupted by SIGTERM');
  const exit = await done;
  assert.deepEqual(exit, { code: 0, reason: 'interrupted by SIGTERM' });
  assert.deepEqual(coord.of('fail').map((r) => [r.body.attempt, r.body.retryable, r.body.error]), [[2, true, 'worker interrupted by SIGTERM']]);
});

test('options are validated in the constructors', () => {
  assert.throws(() => new Worker({ coordinator: 'http://127.0.0.1:1', slots: 0 }), { code: 'MR_ERR_WORKER_CONFIG', message: /slots/ });
  assert.throws(() => new Worker({ coordinator: 'not a url' }), { code: 'MR_ERR_WORKER_CONFIG', message: /absolute http/ });
  assert.throws(() => new CoordinatorClient({ url: 'ftp://127.0.0.1:1' }), { code: 'MR_ERR_WORKER_CONFIG' });
  assert.throws(() => new CoordinatorClient({ url: 'http://127.0.0.1:1/api' }), { code: 'MR_ERR_WORKER_CONFIG', message: /no path/ });
  assert.throws(() => new CoordinatorClient({ url: 'http://127.0.0.1:1', connections: 0 }), { code: 'MR_ERR_WORKER_CONFIG', message: /connections/ });
  assert.throws(() => new CoordinatorClient({ url: 'http://127.0.0.1:1', timeoutMs: 5 } as never), { code: 'MR_ERR_WORKER_CONFIG', message: /timeoutMs was removed; use requestTimeoutMs/ });
});
