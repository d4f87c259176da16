/**
 * Skipping bad records (paper §4.6) with real `mr` processes: a map that
 * throws on one line and a reduce that throws on one key, in a job with
 * skipBadRecords: the job succeeds with the output of the sequential run
 * minus that line and that key, and says what it skipped. (A map that hangs
 * on a record: tests/slow/mr-skip-hang.test.ts, `npm run slow`.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Cluster } from '../src/cluster.ts';
import { runMr } from '../src/procs.ts';
import { sortedLines, withLine } from '../src/lab.ts';

test('bad records: a map that throws on a line and a reduce that throws on a key are skipped after two failures each; output = mr seq without them; counted, listed, capped; without skipping the job fails', async (t) => {
  const c = new Cluster(t, 'export default [];');
  await c.start(['--max-attempts', '5'], 2);
  const r = c.lab.root;
  const throwAt = withLine(c.lab.corpus[0]!, join(r, 'throw.txt'), join(r, 'clean-0.txt'), 'the BAD-RECORD is here', 40);
  const inputs = [join(r, 'throw.txt'), c.lab.corpus[1]!];
  const options = { reduceThrow: 'the' };

  const started = Date.now();
  const out = join(r, 'out-skip');
  const job = await c.finished(await c.submit({ app: 'bad', inputs, reduces: 2, output: out, options, skipBadRecords: true }));
  t.diagnostic(`job with a throwing line and a throwing key: ${Date.now() - started} ms, attempts ${JSON.stringify(job.attempts)}`);
  assert.equal(job.state, 'succeeded', `${job.error}\n${c.lab.describe()}`);
  assert.equal(job.counters.skippedRecords, 2);
  assert.equal(job.skipped.length, 2, JSON.stringify(job.skipped));
  const [m, k] = [job.skipped.find((x: any) => x.record.phase === 'map'), job.skipped.find((x: any) => x.record.phase === 'reduce')];
  assert.deepEqual([m.file, m.record.offset, m.record.records, m.failures], [inputs[0], throwAt, 1, 2]);
  assert.match(m.error, /bad record/);
  assert.deepEqual([k.record.key, k.failures], ['the', 2]);
  assert.match(k.error, /bad key the/);

  const seq = join(r, 'seq');
  const s = await runMr(['seq', '--app', 'bad', '--output', seq, join(r, 'clean-0.txt'), inputs[1]!], { cwd: c.lab.cwd, env: c.lab.env });
  assert.equal(s.code, 0, s.stderr);
  const expected = sortedLines(seq).filter((l) => !l.toString('latin1').startsWith('the '));
  assert.equal(expected.length, sortedLines(seq).length - 1);
  assert.deepEqual(sortedLines(out), expected, 'the output is the sequential run without the bad line and the bad key');

  const status = await runMr(['status', '--coordinator', c.url, job.id], { cwd: c.lab.cwd, env: c.lab.env });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`throw\\.txt @${throwAt}`));
  assert.match(status.stdout, /key "the" \(group \d+\)/);
  assert.match(status.stdout, /skippedRecords\s+2/);

  // Past the job's cap: it fails and says why. Without skipping: the task gives up after its attempts.
  const capped = await c.finished(await c.submit({ app: 'bad', inputs: [inputs[0]], reduces: 1, skipBadRecords: true, maxSkippedRecords: 1, options: { throw: 'the' } }));
  assert.equal(capped.state, 'failed');
  assert.match(capped.error, /maxSkippedRecords 1/);
  const off = await c.finished(await c.submit({ app: 'bad', inputs: [inputs[0]], reduces: 1 }));
  assert.equal(off.state, 'failed');
  assert.match(off.error, /gave up after 5 attempts .*bad record/);
  assert.equal(off.skipped, undefined);
  // maxSkippedRecords without skipBadRecords is refused (400, nothing created).
  const bad = await c.api('POST', '/v1/jobs', { app: 'bad', inputs, maxSkippedRecords: 3 });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal(bad.body.code, 'MR_ERR_BAD_OPTIONS');
});
