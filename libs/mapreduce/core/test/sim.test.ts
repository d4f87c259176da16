import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seedFromEnv } from '@mr/sim';
import { simulate, type SimResult } from './sim.ts';

const fixed = process.env['SEED'] !== undefined ? seedFromEnv(process.env, 0) : undefined;
const seeds = (n: number, base: number): number[] => (fixed !== undefined ? [fixed] : Array.from({ length: n }, (_, i) => base + i));

function report(r: SimResult): string {
  return `seed ${r.seed} failed (replay: SEED=${r.seed} node --conditions=@mr/source --import tsx --test test/sim.test.ts):\n  ${r.problems.join('\n  ')}`;
}

test('with crashes, stalls, slow workers, duplicate completions and coordinator restarts, every task commits once and every job finishes', () => {
  let restarts = 0;
  let crashes = 0;
  let stalls = 0;
  for (const seed of seeds(150, 1000)) {
    const r = simulate({ seed, workers: 1 + (seed % 4), jobs: 1 + (seed % 3), faultTicks: 600, livenessTicks: 3000, faults: true });
    assert.deepEqual(r.problems, [], report(r));
    restarts += r.restarts;
    crashes += r.crashes;
    stalls += r.stalls;
  }
  if (fixed === undefined) {
    // The faults really happened (otherwise this test proves nothing).
    assert.ok(restarts > 10 && crashes > 50 && stalls > 20, `restarts=${restarts} crashes=${crashes} stalls=${stalls}`);
  }
});

test('without faults and without backup tasks no map task runs twice (the job-count rule)', () => {
  for (const seed of seeds(100, 5000)) {
    const r = simulate({ seed, workers: 1 + (seed % 5), jobs: 1 + (seed % 3), faultTicks: 300, livenessTicks: 3000, faults: false, backups: false });
    assert.deepEqual(r.problems, [], report(r));
    for (const [task, runs] of r.mapRuns) assert.equal(runs, 1, `seed ${seed}: ${task} ran ${runs} times`);
    assert.equal(r.restarts + r.crashes + r.stalls + r.duplicates, 0);
  }
});

test('backup tasks under faults and without: commits stay single, every race ends, and backups win some', () => {
  const total: Record<string, number> = {};
  for (const seed of seeds(60, 9000)) {
    for (const faults of [false, true]) {
      const r = simulate({ seed, workers: 2 + (seed % 4), jobs: 1 + (seed % 3), faultTicks: 400, livenessTicks: 3000, faults });
      assert.deepEqual(r.problems, [], report(r));
      // A coordinator restart forgets running backups (they are not journaled): count runs without one.
      if (r.restarts === 0) for (const [k, v] of Object.entries(r.backups)) total[k] = (total[k] ?? 0) + v;
    }
  }
  const ended = Object.entries(total).filter(([k]) => k !== 'running').reduce((n, [, v]) => n + v, 0);
  assert.equal(ended, total['running'], `every backup launched ends once (runs without a restart): ${JSON.stringify(total)}`);
  assert.ok((total['backup-won'] ?? 0) > 5 && (total['original-won'] ?? 0) > 5, JSON.stringify(total));
});

test('a seed replays exactly', () => {
  const a = simulate({ seed: 77, workers: 3, jobs: 2, faultTicks: 600, livenessTicks: 3000, faults: true });
  const b = simulate({ seed: 77, workers: 3, jobs: 2, faultTicks: 600, livenessTicks: 3000, faults: true });
  assert.deepEqual({ ...a, mapRuns: [...a.mapRuns] }, { ...b, mapRuns: [...b.mapRuns] });
});

test('a standby fed the same inputs, started by state transfer at any point, makes the same effects and ends in the same state', () => {
  let transfers = 0;
  let followed = 0;
  for (const seed of seeds(30, 9000)) {
    const r = simulate({ seed, workers: 1 + (seed % 4), jobs: 1 + (seed % 3), faultTicks: 400, livenessTicks: 3000, faults: true, standby: true });
    assert.deepEqual(r.problems, [], report(r));
    transfers += r.transfers;
    followed += r.followed;
  }
  if (fixed === undefined) assert.ok(transfers > 60 && followed > 10_000, `transfers=${transfers} followed=${followed}`);
});

test('worker shuffle: with crashes, stalls and restarts, lost map outputs run again, reduces fetch only committed outputs, every job finishes', () => {
  let lost = 0;
  let fetchFailures = 0;
  for (const seed of seeds(80, 12000)) {
    const r = simulate({ seed, workers: 2 + (seed % 4), jobs: 1 + (seed % 3), faultTicks: 600, livenessTicks: 3000, faults: true, shuffle: true });
    assert.deepEqual(r.problems, [], report(r));
    lost += r.lostOutputs;
    fetchFailures += r.fetchFailures;
  }
  // The rule was exercised (otherwise this test proves nothing).
  if (fixed === undefined) assert.ok(lost > 20 && fetchFailures > 20, `lost=${lost} fetchFailures=${fetchFailures}`);
});

test('worker shuffle without faults: no map runs twice and no fetch fails', () => {
  for (const seed of seeds(40, 15000)) {
    const r = simulate({ seed, workers: 1 + (seed % 4), jobs: 1 + (seed % 3), faultTicks: 300, livenessTicks: 3000, faults: false, backups: false, shuffle: true });
    assert.deepEqual(r.problems, [], report(r));
    for (const [task, runs] of r.mapRuns) assert.equal(runs, 1, `seed ${seed}: ${task} ran ${runs} times`);
    assert.equal(r.lostOutputs + r.fetchFailures, 0);
    assert.ok(r.fetches > 0);
  }
});
