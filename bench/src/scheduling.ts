/**
 * The scheduler's own rate: a real coordinator (HTTP, journal with fsync)
 * and real Worker clients in this process, whose tasks do no work (the
 * executors answer at once). Tasks per second from submit to finish, with
 * one poll per slot (workers of 1 slot) against batched polls (workers of
 * several slots, one poll asking for all free slots).
 *
 *   npm run bench -w @mr/bench -- scheduling     (10,000 tasks; BENCH_QUICK=1: 2,000)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCoordinator } from '@mr/coordinator';
import { Worker, type Executors } from '@mr/worker';
import { getApp } from '@mr/mapreduce-apps';
import type { Benchmark } from './benchmark.ts';

const noWork: Executors = {
  getApp,
  runMapTask: async () => ({ files: [], counters: {} }),
  // The coordinator publishes a reduce's file itself (rename into the output), so the file must exist.
  runReduceTask: async (spec) => {
    const file = join(spec.outputDir, `mr-out-${spec.reduceIndex}`);
    mkdirSync(spec.outputDir, { recursive: true });
    writeFileSync(file, '');
    return { file, counters: {} };
  },
};

async function rate(tasks: number, workers: number, slots: number, log: (l: string) => void): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'mr-bench-sched-'));
  const inputs = join(dir, 'in');
  mkdirSync(inputs);
  const file = join(inputs, 'f.txt');
  writeFileSync(file, 'x\n');
  const c = await startCoordinator({ port: 0, dataDir: join(dir, 'data'), inputRoots: [inputs], outputRoots: [dir], logLevel: false });
  const ws = Array.from({ length: workers }, () => new Worker({ coordinator: c.url, slots, executors: noWork, log: () => {} }));
  const runs = ws.map((w) => w.run());
  try {
    while (c.app.scheduler.core.workers().length < workers) await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    // nocrash takes one whole file per map task (no combining of small files), so the job has `tasks` maps.
    const res = await c.app.inject({ method: 'POST', url: '/v1/jobs', payload: { app: 'nocrash', inputs: Array.from({ length: tasks }, () => file), reduces: 1, output: join(dir, 'out') } });
    if (res.statusCode !== 201) throw new Error(`submit refused: ${res.statusCode} ${res.body}`);
    const { id } = res.json() as { id: string };
    await new Promise<void>((resolve) => {
      const check = (e: { type: string; jobId?: string }): void => {
        if (e.type === 'job-finished' && e.jobId === id) {
          c.app.scheduler.off('event', check);
          resolve();
        }
      };
      c.app.scheduler.on('event', check);
    });
    const s = (performance.now() - t0) / 1000;
    const job = (await c.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as { state: string; error?: string };
    if (job.state !== 'succeeded') throw new Error(`job ${id} ${job.state}: ${job.error ?? ''}`);
    const r = Math.round((tasks + 1) / s);
    log(`${tasks} tasks, ${workers} workers x ${slots} slot(s): ${s.toFixed(2)} s, ${r} tasks/s`);
    return r;
  } finally {
    await Promise.all(ws.map((w) => w.stop()));
    await Promise.all(runs);
    await c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const scheduling: Benchmark = {
  name: 'scheduling',
  description: 'scheduler rate with tasks that do no work: real coordinator + Worker clients over loopback HTTP, one process',
  async run(ctx) {
    const tasks = ctx.quick ? 2000 : 10_000;
    const perSlot = await rate(tasks, 12, 1, ctx.log);
    const batched = await rate(tasks, 3, 4, ctx.log);
    const batched16 = await rate(tasks, 3, 16, ctx.log);
    return { tasks, 'tasks/s 12x1 (a poll per slot)': perSlot, 'tasks/s 3x4 (batched polls)': batched, 'tasks/s 3x16 (batched polls)': batched16 };
  },
};
