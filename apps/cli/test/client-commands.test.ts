/**
 * Usage errors and formatting of the client-side commands (worker, submit,
 * status, local), run in-process through main(): nothing here needs a
 * server, since every case is refused before the first request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { main } from '../src/index.ts';
import { table, formatJob } from '../src/commands/status.ts';
import { sseData } from '../src/http.ts';
import type { JobView } from '@mr/mapreduce-protocol';

async function mr(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(String(c)), cb()) });
  const code = await main(argv, { env: {}, stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
  return { code, stdout, stderr };
}

test('each command has --help that names its options', async () => {
  for (const [cmd, opt] of [['worker', '--slots'], ['submit', '--wait'], ['status', 'JOB_ID'], ['local', '--workers']] as const) {
    const r = await mr(cmd, '--help');
    assert.equal(r.code, 0, cmd);
    assert.match(r.stdout, new RegExp(`^usage: mr ${cmd}`), cmd);
    assert.ok(r.stdout.includes(opt), `${cmd} --help mentions ${opt}`);
  }
});

test('mr --version prints the package version and node version', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await mr(flag);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^mr \d+\.\d+\.\d+ \(node \d+\.\d+\.\d+\)\n$/);
  }
});

test('usage errors exit 2 and say what is wrong', async () => {
  const cases: [string[], RegExp][] = [
    [['worker'], /--coordinator URL is required/],
    [['worker', '--coordinator', 'http://127.0.0.1:1', '--slots', '0'], /--slots: must be between 1 and 64/],
    [['worker', '--coordinator', 'ftp://127.0.0.1:1'], /url must be http\(s\)/],
    [['worker', '--coordinator', 'http://127.0.0.1:1', '--unreachable', 'soon'], /--unreachable: expected a duration/],
    [['submit', '--app', 'wc', 'f.txt'], /--coordinator URL is required/],
    [['submit', '--coordinator', 'http://127.0.0.1:1', 'f.txt'], /--app NAME is required/],
    [['submit', '--coordinator', 'http://127.0.0.1:1', '--app', 'wc'], /at least one input FILE/],
    [['submit', '--coordinator', 'http://127.0.0.1:1', '--app', 'wc', '--reduces', 'ten', 'f'], /--reduces: expected an integer/],
    [['submit', '--coordinator', 'http://127.0.0.1:1', '--app', 'grep', '--option', 'pattern', 'f'], /--option expects KEY=VALUE/],
    [['submit', '--coordinator', 'http://127.0.0.1:1', '--app', 'wc', '--bogus', 'f'], /Unknown option '--bogus'/],
    [['status'], /--coordinator URL is required/],
    [['status', '--coordinator', 'http://127.0.0.1:1', 'a', 'b'], /at most one JOB_ID/],
    [['local', '--workers', '0'], /--workers: must be between 1 and 64/],
    [['local', '--demo', '--no-demo'], /exclude each other/],
  ];
  for (const [argv, re] of cases) {
    const r = await mr(...argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, argv.join(' '));
  }
});

test('status tables align columns and show a job in detail', () => {
  assert.equal(table(['ID', 'N'], [['a', '5'], ['bbb', '10']]), 'ID    N\n---  --\na     5\nbbb  10\n');
  const job: JobView = {
    id: 'j7', app: 'grep', state: 'failed', reduces: 2, inputs: 3, output: '/o', options: { pattern: 'x' },
    submittedAt: '2026-01-01T00:00:00.000Z', startedAt: '2026-01-01T00:00:01.000Z', finishedAt: '2026-01-01T00:00:03.500Z',
    tasks: { map: { total: 3, pending: 0, running: 0, done: 3 }, reduce: { total: 2, pending: 1, running: 0, done: 1 } },
    attempts: { started: 6, reissued: 1, failed: 1 }, counters: { mapInputBytes: 12 }, outputFiles: [], error: 'reduce-1: boom',
  };
  const text = formatJob(job);
  assert.match(text, /^job j7$/m);
  assert.match(text, /state\s+failed: reduce-1: boom/);
  assert.match(text, /\(2\.5s\)/);
  assert.match(text, /attempts\s+started 6, re-issued 1, failed 1/);
  assert.match(text, /^reduce\s+2\s+1\s+0\s+1$/m);
  assert.match(text, /^mapInputBytes\s+12$/m);
});

test('the SSE parser yields each event once, across chunk boundaries and CRLF', async () => {
  async function* chunks() {
    yield Buffer.from(': hello\n\ndata: {"a"');
    yield Buffer.from(':1}\r\n\r\nevent: x\ndata: one\ndata: two\n');
    const e = Buffer.from('\ndata: é\n\n');
    yield e.subarray(0, 8); // splits the two bytes of é
    yield e.subarray(8);
    yield Buffer.from('data: cut off by the end of the stream');
  }
  const got: string[] = [];
  for await (const d of sseData(chunks())) got.push(d);
  // As the SSE spec says, an event the stream ends in the middle of is not dispatched.
  assert.deepEqual(got, ['{"a":1}', 'one\ntwo', 'é']);
});
