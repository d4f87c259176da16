/**
 * `mr local --demo`: the whole cluster as separate processes, the demo word
 * count, a worker restarted after kill -9, and a clean Ctrl-C.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Proc, alive, localEnv, sleep } from '../src/procs.ts';

/**
 * Starts `mr local` with `flags` and 2 workers on free ports in a temp dir; kills
 * it and every pid pushed to `pids` when the test ends. Resolves once it serves.
 */
async function startLocal(t: TestContext, prefix: string, flags: string[]) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const local = new Proc('mr local', ['local', ...flags, '--port', '0', '--workers', '2', '--data', join(dir, 'data')], { cwd: dir, env: localEnv(), limitMs: 90_000 });
  const pids: number[] = [];
  t.after(async () => {
    local.kill();
    await local.exited;
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await local.waitFor(/serving; press Ctrl-C to stop/);
  const url = /mapreduce coordinator\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(local.stdout)?.[1];
  assert.ok(url, local.stdout);
  pids.push(...(/workers: 2 \(pids (\d+), (\d+)\)/.exec(local.stdout) ?? []).slice(1).map(Number));
  assert.equal(pids.length, 2, local.stdout);
  return { local, url: url!, pids };
}

test('mr local --demo runs a word count on its own corpus, restarts a killed worker, and stops cleanly on SIGINT', async (t) => {
  const { local, url, pids } = await startLocal(t, 'mr-local-', ['--demo']);
  const out = local.stdout;
  const outDir = /demo: done in [\d.]+ s; output in (\S+) \(10 files mr-out-\*\)/.exec(out)?.[1];
  assert.ok(outDir, out);
  assert.match(out, /demo: top words: the \d+, /);

  // The demo's output is a real word count: the printed top word's count matches the files.
  const files = readdirSync(outDir!).filter((f) => f.startsWith('mr-out-'));
  assert.equal(files.length, 10);
  const theLine = files.flatMap((f) => readFileSync(join(outDir!, f), 'utf8').split('\n')).find((l) => l.startsWith('the '));
  assert.match(out, new RegExp(`top words: ${theLine}\\b`));

  // A worker killed with -9 comes back.
  process.kill(pids[0]!, 'SIGKILL');
  await local.waitFor(/worker 1 exited \(code null, signal SIGKILL\); restarting it/);

  local.child.kill('SIGINT');
  const e = await local.wait();
  assert.equal(e.code, 0, local.stderr);
  assert.match(local.stdout, /stopped\n$/);
  await sleep(100);
  for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} still running`);
  const res = await fetch(`${url}/healthz`).catch((err: Error) => err);
  assert.ok(res instanceof Error, 'the coordinator is gone');
});

test('the children of mr local stop when mr local itself is killed with -9 (no orphans)', async (t) => {
  const { local, pids } = await startLocal(t, 'mr-local-orphans-', ['--no-demo', '--no-vm']);
  pids.push(Number(/coordinator pid (\d+)/.exec(local.stdout)?.[1]));
  assert.ok(pids[2]! > 0, local.stdout);

  local.child.kill('SIGKILL');
  await local.exited;
  // The coordinator and the workers notice the closed pipe and shut down.
  const deadline = Date.now() + 20_000;
  while (pids.some(alive)) {
    assert.ok(Date.now() < deadline, `still running 20 s after mr local died: ${pids.filter(alive).join(", ")}`);
    await sleep(100);
  }
});
