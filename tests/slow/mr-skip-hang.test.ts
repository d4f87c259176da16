/**
 * Skipping bad records (paper §4.6) with real `mr` processes (`npm run slow`:
 * it waits out two progress timeouts): a map that throws on one line and a
 * map that hangs on another (as a regex that never ends would) in a job with
 * skipBadRecords: the job succeeds with the output of the sequential run
 * minus those lines, and says which it skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Cluster } from '../src/cluster.ts';
import { runMr } from '../src/procs.ts';
import { sortedLines, withLine } from '../src/lab.ts';

test('bad records: a map that throws on a line and one that hangs on a line are skipped after two failures each; output = mr seq without them; counted, listed, capped; without skipping the job fails', async (t) => {
  const c = new Cluster(t, 'export default [];');
  // Heartbeats every 500 ms (a quarter of the heartbeat timeout); a map without progress for 2 s is stuck.
  await c.start(['--heartbeat-timeout', '2s', '--task-progress-timeout', '2s', '--max-attempts', '5'], 2);
  const r = c.lab.root;
  const throwAt = withLine(c.lab.corpus[0]!, join(r, 'throw.txt'), join(r, 'clean-0.txt'), 'the BAD-RECORD is here', 40);
  const hangAt = withLine(c.lab.corpus[1]!, join(r, 'hang.txt'), join(r, 'clean-1.txt'), 'a HANG-HERE line', 70);
  const inputs = [join(r, 'throw.txt'), join(r, 'hang.txt')];
  const options = { hang: 'HANG-HERE' };

  const started = Date.now();
  const out = join(r, 'out-skip');
  const job = await c.finished(await c.submit({ app: 'bad', inputs, reduces: 2, output: out, options, skipBadRecords: true }));
  t.diagnostic(`job with a throwing and a hanging record: ${Date.now() - started} ms, attempts ${JSON.stringify(job.attempts)}`);
  assert.equal(job.state, 'succeeded', `${job.error}\n${c.lab.describe()}`);
  assert.equal(job.counters.skippedRecords, 2);
  const skipped = [...job.skipped].sort((a: any, b: any) => (a.file < b.file ? 1 : -1));
  assert.equal(skipped.length, 2, JSON.stringify(job.skipped));
  assert.deepEqual(skipped.map((k: any) => [k.file, k.record.phase, k.record.offset, k.record.records, k.failures]), [
    [inputs[0], 'map', throwAt, 1, 2],
    [inputs[1], 'map', hangAt, 1, 2],
  ]);
  // The throw is reported as such, unless a loaded machine delays the report past the progress timeout (then the stall names the line).
  assert.match(skipped[0].error, /bad record|no progress/);
  assert.match(skipped[1].error, /no progress/);

  const seq = join(r, 'seq');
  const s = await runMr(['seq', '--app', 'bad', '--output', seq, join(r, 'clean-0.txt'), join(r, 'clean-1.txt')], { cwd: c.lab.cwd, env: c.lab.env });
  assert.equal(s.code, 0, s.stderr);
  assert.deepEqual(sortedLines(out), sortedLines(seq), 'the output is the sequential run over the inputs without the bad lines');

  const status = await runMr(['status', '--coordinator', c.url, job.id], { cwd: c.lab.cwd, env: c.lab.env });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`throw\\.txt @${throwAt}`));
  assert.match(status.stdout, /skippedRecords\s+2/);

});
