import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Value } from 'typebox/value';
import { JobSubmit, PollReply, TaskComplete } from '../src/index.ts';

test('a job submission accepts the DESIGN.md example and refuses junk', () => {
  assert.ok(Value.Check(JobSubmit, { app: 'wc', inputs: ['/abs/file'], reduces: 10, output: '/abs/dir' }));
  assert.ok(!Value.Check(JobSubmit, { app: 'wc', inputs: [] }));
  assert.ok(!Value.Check(JobSubmit, { app: 'wc', inputs: ['/a'], reduces: 0 }));
  assert.ok(!Value.Check(JobSubmit, { app: 'wc', inputs: ['/a'], reduces: 1_000_000 }));
  assert.ok(!Value.Check(JobSubmit, { app: 'wc', inputs: ['/a'], surprise: 1 }));
});

test('poll replies are a closed union', () => {
  assert.ok(Value.Check(PollReply, { type: 'wait' }));
  assert.ok(Value.Check(PollReply, { type: 'exit', reason: 'all jobs done' }));
  assert.ok(!Value.Check(PollReply, { type: 'dance' }));
  assert.ok(Value.Check(TaskComplete, { jobId: 'j1', taskId: 'map-0', attempt: 1, durationMs: 3, files: [] }));
  assert.ok(!Value.Check(TaskComplete, { jobId: 'j1', taskId: 'map-0', attempt: 0, durationMs: 3, files: [] }));
});
