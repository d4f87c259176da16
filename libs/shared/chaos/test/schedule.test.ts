import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSchedule, CATALOG, parseSeed, describeFault, ERR_UNKNOWN_DRILL, ERR_BAD_SEED, corpusFile } from '../src/index.ts';

test('the same seed gives the same schedule, for every drill and scale', () => {
  for (const d of CATALOG) {
    for (const scale of ['full', 'short'] as const) {
      for (const seed of [0, 1, 42, 4294967295]) {
        assert.deepEqual(buildSchedule(d.name, seed, scale), buildSchedule(d.name, seed, scale), `${d.name} seed ${seed}`);
      }
    }
  }
});

test('different seeds give different schedules', () => {
  for (const d of CATALOG) {
    const seen = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) seen.add(JSON.stringify(buildSchedule(d.name, seed).faults));
    // Event-driven drills (every fault a tap at time 0) draw little: which worker, which reply.
    const eventDriven = buildSchedule(d.name, 1).faults.every((f) => f.atMs === 0);
    // 20 seeds over timings drawn from ranges hundreds of ms wide: nearly all distinct.
    assert.ok(seen.size >= (eventDriven ? 4 : 18), `${d.name}: only ${seen.size} distinct schedules from 20 seeds`);
  }
});

test('event-driven drills: break-dedup resets the connection of one incr reply, break-attempt-fencing holds a hand-out until it is handed out again', () => {
  for (let seed = 0; seed < 50; seed++) {
    const dd = buildSchedule('break-dedup', seed, 'short');
    assert.equal(dd.faults.length, 1);
    const tap = dd.faults[0]!.action;
    assert.ok(tap.type === 'tap' && tap.effect === 'reset' && tap.link === 'clients->primary' && tap.request === '"op":"incr"', JSON.stringify(tap));
    assert.equal((dd.workload as { proxyClients?: boolean }).proxyClients, true);
    const fe = buildSchedule('break-attempt-fencing', seed, 'short');
    assert.deepEqual(fe.faults.map((f) => f.action.type), ['tap', 'tap', 'tap', 'release', 'await', 'release']);
    assert.equal((fe.workload as { proxyWorkers?: boolean }).proxyWorkers, true);
  }
  assert.match(describeFault(buildSchedule('break-dedup', 3, 'short').faults[0]!), /^\+0ms on the reply to incr number \d+ is in flight \(link clients->primary, request matching "\\"op\\":\\"incr\\"".*\): reset the connection$/);
});

test('a schedule is pinned: seed 7 of worker-crash-storm is exactly this (catches an accidental change of draw order)', () => {
  const s = buildSchedule('worker-crash-storm', 7, 'short');
  assert.deepEqual(s.faults.map(describeFault), [
    '+278ms kill worker-1',
    '+1067ms start worker-1',
    '+1169ms kill worker-1',
    '+1742ms start worker-1',
    '+2117ms kill worker-0',
    '+2768ms start worker-0',
  ]);
});

test('worker-crash-storm only kills running workers and starts each killed one again', () => {
  for (let seed = 0; seed < 200; seed++) {
    const s = buildSchedule('worker-crash-storm', seed);
    const up = new Set(Array.from({ length: (s.workload as { workers: number }).workers }, (_, i) => `worker-${i}`));
    for (const f of s.faults) {
      if (f.action.type === 'kill') assert.ok(up.delete(f.action.target), `seed ${seed}: kill of stopped ${f.action.target}`);
      if (f.action.type === 'start') assert.ok(!up.has(f.action.target) && up.add(f.action.target), `seed ${seed}: start of running ${f.action.target}`);
    }
    assert.equal(up.size, 4, `seed ${seed}: every worker is running at the end`);
    assert.deepEqual(s.faults.map((f) => f.atMs), s.faults.map((f) => f.atMs).sort((a, b) => a - b));
  }
});

test('primary-stall stalls for 1-5 s and always continues the process', () => {
  for (let seed = 0; seed < 200; seed++) {
    const [stop, cont] = buildSchedule('primary-stall', seed).faults;
    assert.equal(stop!.action.type, 'stop');
    assert.equal(cont!.action.type, 'cont');
    const ms = cont!.atMs - stop!.atMs;
    assert.ok(ms >= 1000 && ms <= 5000, `seed ${seed}: ${ms}`);
  }
});

test('unknown drills and bad seeds are refused with coded errors', () => {
  assert.throws(() => buildSchedule('nope', 1), (e: { code: string; message: string }) => e.code === ERR_UNKNOWN_DRILL.code && /worker-crash-storm/.test(e.message));
  for (const bad of ['', '-1', '1.5', 'abc', '4294967296', '99999999999']) {
    assert.throws(() => parseSeed(bad), (e: { code: string }) => e.code === ERR_BAD_SEED.code, bad);
  }
  assert.equal(parseSeed('4294967295'), 4294967295);
  assert.throws(() => buildSchedule('primary-stall', -1), (e: { code: string }) => e.code === ERR_BAD_SEED.code);
});

test('the corpus is a function of seed and file index', () => {
  assert.equal(corpusFile(3, 0, 500), corpusFile(3, 0, 500));
  assert.notEqual(corpusFile(3, 0, 500), corpusFile(3, 1, 500));
  assert.notEqual(corpusFile(3, 0, 500), corpusFile(4, 0, 500));
});

test('worker-stall stalls running workers for longer than the task timeout and continues each', () => {
  for (let seed = 0; seed < 200; seed++) {
    const s = buildSchedule('worker-stall', seed);
    const timeout = (s.workload as { taskTimeoutMs: number }).taskTimeoutMs;
    const stoppedAt = new Map<string, number>();
    for (const f of s.faults) {
      const a = f.action as { type: string; target: string };
      if (a.type === 'stop') {
        assert.ok(!stoppedAt.has(a.target), `seed ${seed}: ${a.target} stopped twice`);
        stoppedAt.set(a.target, f.atMs);
      } else {
        assert.equal(a.type, 'cont');
        assert.ok(f.atMs - stoppedAt.get(a.target)! > timeout, `seed ${seed}: stall not longer than the task timeout`);
        stoppedAt.delete(a.target);
      }
    }
    assert.equal(stoppedAt.size, 0, `seed ${seed}: every stalled worker continues`);
  }
});

test('a control schedule keeps the faults and the seed, switches the rule back on and expects every invariant to hold', async () => {
  const { controlSchedule, ERR_NO_CONTROL } = await import('../src/index.ts');
  for (const d of CATALOG.filter((x) => x.expectBroken)) {
    const s = buildSchedule(d.name, 5, 'short');
    const c = controlSchedule(s);
    assert.deepEqual(c.faults, s.faults, d.name);
    assert.equal(c.seed, 5);
    assert.equal(c.control, true);
    assert.equal(c.expectBroken, undefined);
    assert.equal(c.mayBreak, undefined);
    assert.equal((c.workload as { breakRule?: string }).breakRule, undefined);
    assert.ok((s.workload as { breakRule?: string }).breakRule, `${d.name} breaks a rule`);
  }
  assert.throws(() => controlSchedule(buildSchedule('primary-kill-under-load', 5)), (e: { code: string }) => e.code === ERR_NO_CONTROL.code);
});

test('every break-the-rule drill names the invariants that must catch it, all of them among those it checks', () => {
  const breaking = CATALOG.filter((d) => d.expectBroken);
  assert.deepEqual(breaking.map((d) => d.name).sort(), ['break-attempt-fencing', 'break-dedup', 'break-output-rule', 'break-test-and-set']);
  for (const d of breaking) for (const id of [...d.expectBroken!, ...(d.mayBreak ?? [])]) assert.ok(d.invariants.includes(id), `${d.name}: ${id}`);
});
