/**
 * The lab's crash test: workers running the `crash` app exit (33 %) or stall
 * up to 10 s (33 %) at the start of every map and reduce. One worker plus
 * three loops that start a new worker 1 s after theirs exits, as long as the
 * coordinator is alive. The coordinator keeps the default 10 s task timeout.
 * The output must equal the sequential `nocrash` output. 120 s per process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, diffLines, CRASH_LIMIT_MS } from '../src/lab.ts';

test('crash: workers that die or stall are replaced; the output equals nocrash run sequentially', async (t) => {
  const lab = new Lab(t);
  const want = await lab.reference('nocrash');
  assert.equal(want.length, 4);
  const { proc: coord, url } = await lab.coordinator(CRASH_LIMIT_MS);
  const job = await lab.submit(url, 'crash');
  const first = lab.worker(url, CRASH_LIMIT_MS);
  const loops = [1, 2, 3].map(() => lab.restartLoop(url, coord, CRASH_LIMIT_MS));
  await coord.wait();
  const started = await Promise.all(loops);
  await first.wait();
  await Promise.all(lab.procs.map((p) => p.wait()));
  const diff = diffLines(lab.sortedOutput(), want);
  assert.equal(diff, undefined, `${diff}\njob ${job}; ${1 + started.reduce((a, b) => a + b, 0)} workers started\n${lab.describe()}`);
  assert.equal(coord.exit?.code, 0, lab.describe());
});
