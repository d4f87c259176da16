/**
 * The MIT 6.5840 lab 1 test-mr.sh, test by test, with real processes: one
 * `mr coordinator --exit-when-done`, `mr worker`s, HTTP on 127.0.0.1, cwd a
 * fresh mr-tmp dir with the inputs passed as ../pg-*.txt. Each process has
 * the lab's 45 s limit. The crash test is in lab-crash.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, diffLines } from '../src/lab.ts';

test('wc: 3 workers; when the coordinator exits the output equals mr seq', async (t) => {
  const lab = new Lab(t);
  const want = await lab.reference('wc');
  assert.ok(want.length > 500, `reference has only ${want.length} lines`);
  const { proc: coord, url } = await lab.coordinator();
  await lab.submit(url, 'wc');
  const workers = [1, 2, 3].map(() => lab.worker(url));
  const e = await coord.wait();
  const diff = diffLines(lab.sortedOutput(), want);
  assert.equal(diff, undefined, `${diff}\n${lab.describe()}`);
  assert.equal(e.code, 0, `coordinator exit\n${lab.describe()}`);
  await Promise.all(workers.map((w) => w.wait()));
});

test('indexer: 2 workers; when the foreground worker exits the output equals mr seq', async (t) => {
  const lab = new Lab(t);
  const want = await lab.reference('indexer');
  // The lab's indexer names documents as the command line gave them (../pg-*.txt).
  assert.ok(want.some((l) => l.toString().includes(',../pg-')), 'reference names documents as given');
  const { url } = await lab.coordinator();
  await lab.submit(url, 'indexer');
  const bg = lab.worker(url);
  const fg = lab.worker(url);
  await fg.wait();
  const diff = diffLines(lab.sortedOutput(), want);
  assert.equal(diff, undefined, `${diff}\n${lab.describe()}`);
  await bg.wait();
});

test('map parallelism: two workers both run maps, and at the same time', async (t) => {
  const lab = new Lab(t);
  const { url } = await lab.coordinator();
  await lab.submit(url, 'mtiming');
  const bg = lab.worker(url);
  const fg = lab.worker(url);
  await fg.wait();
  const lines = lab.catOutput();
  const times = lines.filter((l) => l.startsWith('times-'));
  assert.equal(times.length, 2, `saw ${times.length} workers rather than 2\n${lines.join('\n')}\n${lab.describe()}`);
  assert.ok(lines.some((l) => /^parallel.* 2/.test(l)), `map workers did not run in parallel\n${lines.join('\n')}`);
  await bg.wait();
});

test('reduce parallelism: two workers run reduces at the same time', async (t) => {
  const lab = new Lab(t);
  const { url } = await lab.coordinator();
  await lab.submit(url, 'rtiming');
  const bg = lab.worker(url);
  const fg = lab.worker(url);
  await fg.wait();
  const lines = lab.catOutput();
  const parallel = lines.filter((l) => /^[a-z] 2/.test(l));
  assert.ok(parallel.length >= 2, `too few parallel reduces (${parallel.length})\n${lines.join('\n')}\n${lab.describe()}`);
  await bg.wait();
});

test('job count: no map task runs twice, even with workers that arrive after the job is done', async (t) => {
  const lab = new Lab(t);
  const { url } = await lab.coordinator();
  await lab.submit(url, 'jobcount');
  const w1 = lab.worker(url);
  const w2 = lab.worker(url);
  await w2.wait();
  // The lab's second pair: started after the first foreground worker exited.
  const w3 = lab.worker(url);
  const w4 = lab.worker(url);
  await w4.wait();
  assert.deepEqual(lab.catOutput(), ['a 8'], lab.describe());
  await Promise.all([w1.wait(), w3.wait()]);
});

test('early exit: no process exits before the output is final', async (t) => {
  const lab = new Lab(t);
  const { proc: coord, url } = await lab.coordinator();
  await lab.submit(url, 'early_exit');
  const workers = [1, 2, 3].map(() => lab.worker(url));
  const all = [coord, ...workers];
  const first = await Promise.race(all.map((p) => p.exited.then(() => p)));
  const initial = lab.sortedOutput();
  await Promise.all(all.map((p) => p.wait()));
  const final = lab.sortedOutput();
  const diff = diffLines(final, initial);
  assert.equal(diff, undefined, `output changed after ${first.name} exited first: ${diff}\n${lab.describe()}`);
  // Not in the lab, but it makes the comparison mean something: the job's whole output.
  // The lab expects the 8 lines `../pg-<name>.txt 1`: file names as the command line gave them.
  assert.deepEqual(final.map(String), lab.inputs.map((p) => `${p} 1`).sort());
});
