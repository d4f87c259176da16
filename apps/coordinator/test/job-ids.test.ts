import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTime } from 'ulid';
import { isUlidJobId } from '@mr/mapreduce-protocol';
import { JobIdSource } from '../src/plugins/app/job-ids.ts';

test('job ids are ULIDs that increase within a millisecond, when the clock steps back, and across a restart', () => {
  let now = 1_800_000_000_000;
  const src = new JobIdSource(undefined, () => now);
  const ids = [src.next(), src.next(), src.next()];
  now -= 60_000; // the clock steps back a minute
  ids.push(src.next());
  now += 120_000;
  ids.push(src.next());
  for (const id of ids) assert.ok(isUlidJobId(id), id);
  assert.deepEqual([...ids].sort(), ids, 'each newer than the one before');
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(decodeTime(ids[0]!), 1_800_000_000_000);
  // A restart whose clock is behind the journal's newest id still goes past it.
  now = 1_700_000_000_000;
  const after = new JobIdSource(ids.at(-1), () => now);
  const first = after.next();
  assert.ok(first > ids.at(-1)!, `${first} > ${ids.at(-1)}`);
  assert.ok(after.next() > first);
});
