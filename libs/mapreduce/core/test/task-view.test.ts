import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from './harness.ts';

test('tasks(): a read-only page of an unfinished job\'s tasks (maps, then reduces) with lease and committed attempt', () => {
  const h = new Harness();
  h.handle({ name: 'register', args: [], kv: {}, lines: [] } as never);
  h.handle({ name: 'submit', args: [], kv: { maps: '3', reduces: '2' } } as never);
  h.handle({ name: 'poll', args: ['w1'], kv: {} } as never);
  const d = h.dirs.get('j1/map-0/1')!;
  h.run({ type: 'complete', requestId: 'c0', workerId: 'w1', credential: h.creds.get('w1')!, jobId: 'j1', taskId: 'map-0', attempt: 1, durationMs: 1, files: [`${d.dir}/mr-0-0`, `${d.dir}/mr-0-1`], counters: {} });
  h.handle({ name: 'poll', args: ['w1'], kv: {} } as never);
  const all = h.core.tasks('j1', 0, 100)!;
  assert.equal(all.total, 5);
  assert.deepEqual(all.tasks.map((t) => [t.id, t.state, t.attempts, t.lease?.workerId, t.committed]), [
    ['map-0', 'done', 1, undefined, 1],
    ['map-1', 'leased', 1, 'w1', undefined],
    ['map-2', 'pending', 0, undefined, undefined],
    ['reduce-0', 'pending', 0, undefined, undefined],
    ['reduce-1', 'pending', 0, undefined, undefined],
  ]);
  assert.deepEqual(h.core.tasks('j1', 2, 2)!.tasks.map((t) => t.id), ['map-2', 'reduce-0']);
  assert.deepEqual(h.core.tasks('j1', 5, 2)!.tasks, []);
  assert.equal(h.core.tasks('nope', 0, 1), undefined);
});
