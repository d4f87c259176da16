import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DROPPED_COUNTER, MAX_JOB_COUNTERS } from '../src/index.ts';
import { Harness } from './harness.ts';

test(`a job keeps at most ${MAX_JOB_COUNTERS} counter names; updates under further names are counted in ${DROPPED_COUNTER}`, () => {
  const h = new Harness();
  h.handle({ name: 'register', args: [], kv: {}, lines: [] } as never);
  h.handle({ name: 'submit', args: [], kv: { maps: '3', reduces: '1' } } as never);
  for (let m = 0; m < 3; m++) {
    h.handle({ name: 'poll', args: ['w1'], kv: {} } as never);
    const counters = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`user.c${m * 50 + i}`, 1]));
    const d = h.dirs.get(`j1/map-${m}/1`)!;
    h.run({ type: 'complete', requestId: `c${m}`, workerId: 'w1', credential: h.creds.get('w1')!, jobId: 'j1', taskId: `map-${m}`, attempt: 1, durationMs: 1, files: [`${d.dir}/mr-${m}-0`], counters });
  }
  const c = h.core.job('j1')!.counters;
  // Names c0..c159 were offered (c50..c59 and c100..c109 twice): the first 128 distinct ones are kept.
  assert.equal(Object.keys(c).length, MAX_JOB_COUNTERS + 1);
  assert.equal(c['user.c0'], 1);
  assert.equal(c['user.c55'], 2);
  assert.equal(c['user.c127'], 1);
  assert.equal(c['user.c128'], undefined);
  assert.equal(c[DROPPED_COUNTER], 160 - MAX_JOB_COUNTERS);
});
