/**
 * Coordinator restart time against the length of its history: a journal of
 * N finished jobs (accepted, the task's lease, the task committed, finished:
 * 4 records each, one worker) is
 * written, then `mr coordinator` is started on it twice: the first start
 * replays the whole history (and compacts it), the second replays the
 * snapshot. Time to "listening" (process start included) and the replay
 * time the coordinator logs. An empty journal gives the process start alone.
 *
 *   npm run bench -w @mr/bench -- restart     (BENCH_QUICK=1: up to 10,000 jobs)
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark } from './benchmark.ts';

const MR = fileURLToPath(new URL('../../apps/cli/bin/mr.js', import.meta.url));

async function writeHistory(file: string, jobs: number): Promise<void> {
  const out = createWriteStream(file);
  const at = new Date().toISOString();
  out.write(JSON.stringify({ type: 'boot', boot: 1, at }) + '\n');
  out.write(JSON.stringify({ type: 'worker-registered', workerId: 'w1', credential: 'c', worker: { name: 'w', pid: 1, host: 'h', slots: 1 }, at }) + '\n');
  for (let i = 1; i <= jobs; i++) {
    const job = { app: 'wc', inputs: ['/in/a.txt'], reduces: 1, output: `/out/${i}`, workDir: `/data/jobs/j${i}/work`, options: {} };
    const ok = out.write(
      JSON.stringify({ type: 'job-accepted', jobId: `j${i}`, job, idempotency: { key: `k${i}`, fingerprint: 'f' }, at }) +
        '\n' +
        JSON.stringify({ type: 'task-leased', jobId: `j${i}`, taskId: 'map-0', attempt: 1, workerId: 'w1', at }) +
        '\n' +
        JSON.stringify({ type: 'task-committed', jobId: `j${i}`, taskId: 'map-0', attempt: 1, files: [`/data/jobs/j${i}/work/m0-a1/mr-0-0`], counters: {}, at }) +
        '\n' +
        JSON.stringify({ type: 'job-finished', jobId: `j${i}`, state: 'succeeded', at }) +
        '\n',
    );
    if (!ok) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Starts `mr coordinator` on dir/data, waits for "listening", stops it; returns ms to listening and the logged replay ms. */
async function start(dir: string): Promise<{ listenMs: number; replayMs: number | undefined; records: number | undefined }> {
  const t0 = performance.now();
  const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0' };
  delete env['MR_TOKEN'];
  const p = spawn(process.execPath, [MR, 'coordinator', '--port', '0', '--data', join(dir, 'data'), '--input-root', dir], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  p.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  while (!/listening on/.test(out)) {
    if (p.exitCode !== null) throw new Error(`coordinator exited: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const listenMs = performance.now() - t0;
  p.kill('SIGTERM');
  await once(p, 'exit');
  const m = /"records":(\d+),.*?"ms":(\d+),"msg":"journal replayed"/.exec(out);
  return { listenMs, replayMs: m ? Number(m[2]) : undefined, records: m ? Number(m[1]) : undefined };
}

export const restart: Benchmark = {
  name: 'restart',
  description: 'coordinator restart time with 0, 1,000 and 100,000 finished jobs in its history (first start: whole history; second: after compaction)',
  async run(ctx) {
    const sizes = ctx.quick ? [0, 1000, 10_000] : [0, 1000, 100_000];
    const result: Record<string, number | string> = {};
    for (const n of sizes) {
      const dir = mkdtempSync(join(tmpdir(), 'mr-bench-restart-'));
      try {
        mkdirSync(join(dir, 'data'));
        const file = join(dir, 'data', 'journal.jsonl');
        await writeHistory(file, n);
        const bytes = statSync(file).size;
        const first = await start(dir);
        const compacted = statSync(file).size;
        const second = await start(dir);
        ctx.log(
          `${n} finished jobs: journal ${(bytes / 1e6).toFixed(1)} MB; first start ${first.listenMs.toFixed(0)} ms to listening ` +
            `(replay of ${first.records ?? 0} records ${first.replayMs ?? 0} ms); journal then ${(compacted / 1e6).toFixed(2)} MB; ` +
            `second start ${second.listenMs.toFixed(0)} ms (replay of ${second.records ?? 0} records ${second.replayMs ?? 0} ms)`,
        );
        result[`${n} jobs: first start ms`] = Math.round(first.listenMs);
        result[`${n} jobs: first replay ms`] = first.replayMs ?? 0;
        result[`${n} jobs: second start ms`] = Math.round(second.listenMs);
        result[`${n} jobs: second replay ms`] = second.replayMs ?? 0;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    return result;
  },
};
