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
import { profileDir, profileInProcess, report } from './profile.ts';

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

async function rate(tasks: number, workers: number, slots: number, log: (l: string) => void): Promise<{ rate: number; cpuMsPerTask: number }> {
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
    const cpu0 = process.cpuUsage();
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
    const cpu = process.cpuUsage(cpu0);
    const cpuMsPerTask = (cpu.user + cpu.system) / 1000 / (tasks + 1);
    const job = (await c.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as { state: string; error?: string };
    if (job.state !== 'succeeded') throw new Error(`job ${id} ${job.state}: ${job.error ?? ''}`);
    const r = Math.round((tasks + 1) / s);
    // Group commit: journal batches written (each one write + fdatasync) for the job's records.
    const metrics = (await c.app.inject({ method: 'GET', url: '/metrics' })).body;
    const fsyncs = Number(/^mr_journal_fsync_seconds_count(?:{[^}]*})? (\d+)/m.exec(metrics)?.[1] ?? NaN);
    log(`${tasks} tasks, ${workers} workers x ${slots} slot(s): ${s.toFixed(2)} s, ${r} tasks/s; CPU ${cpuMsPerTask.toFixed(2)} ms a task (coordinator and workers: ${Math.round(1000 / cpuMsPerTask)} tasks per CPU second); ${fsyncs} fsyncs (${((tasks + 1) / fsyncs).toFixed(1)} tasks each)`);
    return { rate: r, cpuMsPerTask };
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
    if (ctx.cpuProf) {
      // A separate, profiled run (profiling slows it: its figures are not the ones above).
      const dir = profileDir('scheduling');
      const { file } = await profileInProcess(dir, 'coordinator-and-workers', () => rate(tasks, 12, 1, (l) => ctx.log(`profiled: ${l}`)));
      for (const l of report(file, 'scheduling 12x1, coordinator and workers in one process')) ctx.log(l);
    }
    return {
      tasks,
      'tasks/s 12x1 (a poll per slot)': perSlot.rate,
      'tasks/s 3x4 (batched polls)': batched.rate,
      'tasks/s 3x16 (batched polls)': batched16.rate,
      'CPU ms/task 12x1': Number(perSlot.cpuMsPerTask.toFixed(2)),
      'CPU ms/task 3x4': Number(batched.cpuMsPerTask.toFixed(2)),
      'CPU ms/task 3x16': Number(batched16.cpuMsPerTask.toFixed(2)),
    };
  },
};
