/**
 * Scheduling rate with many small tasks: a real coordinator and real workers
 * (processes, loopback HTTP, journal fsyncs) run a wc job over many tiny
 * files, one map task per file. Reports tasks per second from the job's own
 * start and finish times, for 1-slot and multi-slot workers side by side.
 *
 *   npm run bench -w @mr/bench -- small-tasks        (10,000 files)
 *   BENCH_QUICK=1 ...                                 (2,000 files)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { Benchmark } from './benchmark.ts';

const MR = fileURLToPath(new URL('../../apps/cli/bin/mr.js', import.meta.url));

function mr(args: string[], cwd: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [MR, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function listening(p: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    p.once('exit', (code) => reject(new Error(`coordinator exited ${code}`)));
  });
}

interface Run {
  files: number;
  workers: number;
  slots: number;
  seconds: number;
  tasksPerSecond: number;
  diskLeftFiles: number;
}

async function runOnce(files: number, workers: number, slots: number, log: (l: string) => void): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'mr-bench-small-'));
  try {
    const inputs = join(dir, 'in');
    mkdirSync(inputs);
    const paths: string[] = [];
    for (let i = 0; i < files; i++) {
      const p = join(inputs, `f${i}.txt`);
      writeFileSync(p, `word${i % 100} tiny file ${i}\n`);
      paths.push(p);
    }
    const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0' };
    delete env['MR_TOKEN'];
    delete env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    const data = join(dir, 'data');
    const coord = mr(['coordinator', '--port', '0', '--data', data, '--input-root', inputs, '--log-level', 'warn'], dir, env);
    const procs: ChildProcess[] = [coord];
    try {
      const url = await listening(coord);
      for (let w = 0; w < workers; w++) {
        const wd = join(dir, `w${w}`);
        mkdirSync(wd);
        procs.push(mr(['worker', '--coordinator', url, '--slots', String(slots), '--work-dir', wd], wd, env));
      }
      // Let the workers register before the clock starts.
      for (let i = 0; i < 100; i++) {
        const res = await request(`${url}/v1/workers`);
        const j = (await res.body.json()) as { workers: unknown[] };
        if (j.workers.length >= workers) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const out = join(dir, 'out');
      const res = await request(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ app: 'wc', inputs: paths, reduces: 1, output: out }) });
      const { id } = (await res.body.json()) as { id: string };
      let job: { state: string; startedAt?: string; finishedAt?: string; submittedAt: string };
      while (true) {
        const r = await request(`${url}/v1/jobs/${id}`);
        job = (await r.body.json()) as typeof job;
        if (job.state !== 'queued' && job.state !== 'running') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      if (job.state !== 'succeeded') throw new Error(`job ${id} ${job.state}`);
      const seconds = (Date.parse(job.finishedAt!) - Date.parse(job.submittedAt)) / 1000;
      // The coordinator removes the job's intermediates once it ends: give it a moment, then count what is left.
      const jobsDir = join(data, 'jobs');
      const left = (): number => {
        try {
          return existsSync(jobsDir) ? readdirSync(jobsDir, { recursive: true }).length : 0;
        } catch {
          return -1; // being removed
        }
      };
      for (let i = 0; i < 100 && left() !== 0; i++) await new Promise((r) => setTimeout(r, 100));
      const diskLeftFiles = left();
      const run = { files, workers, slots, seconds, tasksPerSecond: Math.round((files + 1) / seconds), diskLeftFiles };
      log(`${files} files, ${workers} workers x ${slots} slot(s): ${seconds.toFixed(2)} s, ${run.tasksPerSecond} tasks/s, ${diskLeftFiles} entries left under data/jobs`);
      return run;
    } finally {
      for (const p of procs) p.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const smallTasks: Benchmark = {
  name: 'small-tasks',
  description: 'scheduling rate: a wc job over many tiny files (one map task each), real coordinator and worker processes',
  async run(ctx) {
    const files = ctx.quick ? 2000 : 10_000;
    const one = await runOnce(files, 3, 1, ctx.log);
    const four = await runOnce(files, 3, 4, ctx.log);
    return { files, 'tasks/s 3x1': one.tasksPerSecond, 'tasks/s 3x4': four.tasksPerSecond, 'disk entries left': one.diskLeftFiles + four.diskLeftFiles };
  },
};
