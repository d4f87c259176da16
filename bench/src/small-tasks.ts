/**
 * Scheduling rate with many small tasks: a real coordinator and real workers
 * (processes, loopback HTTP, journal fsyncs) run a wc job over many tiny
 * files, one map task per file. Reports tasks per second from the job's own
 * start and finish times, for 1-slot and multi-slot workers side by side.
 *
 *   npm run bench -w @mr/bench -- small-tasks        (10,000 files)
 *   BENCH_QUICK=1 ...                                 (2,000 files)
 *   --cpu-prof                                        (profiles of the 3x1 run's coordinator and first worker)
 *   BENCH_AGAINST=DIR                                 (another built checkout, run alternately: ratios)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { median, type Benchmark } from './benchmark.ts';
import { cpuProfArgs, monotonicUs, profileDir, reportDir, type Window } from './profile.ts';

const MR = fileURLToPath(new URL('../../apps/cli/bin/mr.js', import.meta.url));

/** How to start `mr`: which checkout's bin, and node flags (profiling). */
interface Mr {
  bin: string;
  label: string;
  /** Profiles go to dir; pids are named (coordinator, worker0, ...); window: the job's run on the monotonic clock. */
  prof?: { dir: string; names: Map<number, string>; window?: Window } | undefined;
}

function mr(m: Mr, name: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): ChildProcess {
  const flags = m.prof ? cpuProfArgs(m.prof.dir) : [];
  const p = spawn(process.execPath, [...flags, m.bin, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (m.prof && p.pid !== undefined) m.prof.names.set(p.pid, name);
  return p;
}

/** CPU seconds a process (all its threads) used so far, from /proc (0 if gone). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) in clock ticks (100 per second on Linux); f[0] is field 3.
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** SIGTERM (a profiled process writes its profile on a clean exit), SIGKILL after 10 s. */
async function stop(p: ChildProcess, clean: boolean): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  if (!clean) {
    p.kill('SIGKILL');
    return gone;
  }
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(t);
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
  mapTasks: number;
  workers: number;
  slots: number;
  seconds: number;
  tasksPerSecond: number;
  /** CPU seconds from submit to the end: coordinator, workers (all threads). */
  cpuCoordinator: number;
  cpuWorkers: number;
  diskLeftFiles: number;
}

async function runOnce(m: Mr, files: number, workers: number, slots: number, log: (l: string) => void): Promise<Run> {
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
    const coord = mr(m, 'coordinator', ['coordinator', '--port', '0', '--data', data, '--input-root', inputs, '--log-level', 'warn'], dir, env);
    const procs: ChildProcess[] = [coord];
    try {
      const url = await listening(coord);
      for (let w = 0; w < workers; w++) {
        const wd = join(dir, `w${w}`);
        mkdirSync(wd);
        procs.push(mr(m, `worker${w}`, ['worker', '--coordinator', url, '--slots', String(slots), '--work-dir', wd], wd, env));
      }
      // Let the workers register before the clock starts.
      for (let i = 0; i < 100; i++) {
        const res = await request(`${url}/v1/workers`);
        const j = (await res.body.json()) as { workers: unknown[] };
        if (j.workers.length >= workers) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const out = join(dir, 'out');
      const from = monotonicUs();
      const cpu0 = procs.map((p) => cpuSeconds(p.pid));
      const res = await request(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ app: 'wc', inputs: paths, reduces: 1, output: out }) });
      const { id } = (await res.body.json()) as { id: string };
      let job: { state: string; startedAt?: string; finishedAt?: string; submittedAt: string; tasks: { map: { total: number } } };
      while (true) {
        const r = await request(`${url}/v1/jobs/${id}`);
        job = (await r.body.json()) as typeof job;
        if (job.state !== 'queued' && job.state !== 'running') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (job.state !== 'succeeded') throw new Error(`job ${id} ${job.state}`);
      if (m.prof) m.prof.window = { fromUs: from, toUs: monotonicUs() };
      const cpu = procs.map((p, i) => cpuSeconds(p.pid) - cpu0[i]!);
      const cpuCoordinator = cpu[0]!;
      const cpuWorkers = cpu.slice(1).reduce((a, b) => a + b, 0);
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
      const mapTasks = job.tasks.map.total;
      const run = { files, mapTasks, workers, slots, seconds, tasksPerSecond: Math.round((files + 1) / seconds), cpuCoordinator, cpuWorkers, diskLeftFiles };
      log(
        `${m.label}: ${files} files (${mapTasks} map tasks), ${workers} workers x ${slots} slot(s): ${seconds.toFixed(2)} s, ${run.tasksPerSecond} files/s, ` +
          `${Math.round((mapTasks + 1) / seconds)} tasks/s; CPU s coordinator ${cpuCoordinator.toFixed(2)}, workers ${cpuWorkers.toFixed(2)}; ${diskLeftFiles} entries left under data/jobs`,
      );
      return run;
    } finally {
      // Workers first (a coordinator that goes first would leave them retrying), then the coordinator.
      await Promise.all(procs.slice(1).map((p) => stop(p, m.prof !== undefined)));
      await stop(coord, m.prof !== undefined);
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
    const reps = Number(process.env['BENCH_REPS'] ?? (ctx.against ? 2 : 1));
    const self: Mr = { bin: MR, label: 'this checkout' };
    const base: Mr | undefined = ctx.against ? { bin: join(ctx.against, 'apps/cli/bin/mr.js'), label: `against ${ctx.against}` } : undefined;
    const out: Record<string, number | string> = { files };
    let left = 0;
    for (const slots of [1, 4]) {
      const mine: number[] = [];
      const theirs: number[] = [];
      const cpuMine: number[] = [];
      const cpuTheirs: number[] = [];
      // Alternately, so that the machine's load hits both alike.
      for (let r = 0; r < reps; r++) {
        const a = await runOnce(self, files, 3, slots, ctx.log);
        mine.push(a.tasksPerSecond);
        cpuMine.push(a.cpuCoordinator + a.cpuWorkers);
        left += a.diskLeftFiles;
        if (base) {
          const b = await runOnce(base, files, 3, slots, ctx.log);
          theirs.push(b.tasksPerSecond);
          cpuTheirs.push(b.cpuCoordinator + b.cpuWorkers);
        }
      }
      out[`files/s 3x${slots}`] = median(mine);
      out[`CPU s 3x${slots}`] = Number(median(cpuMine).toFixed(2));
      if (base) {
        out[`files/s 3x${slots} against`] = median(theirs);
        out[`CPU s 3x${slots} against`] = Number(median(cpuTheirs).toFixed(2));
        out[`ratio 3x${slots}`] = Number((median(mine) / median(theirs)).toFixed(2));
        ctx.log(
          `3 workers x ${slots}: ${median(mine)} files/s against ${median(theirs)}: ${(median(mine) / median(theirs)).toFixed(2)}x; ` +
            `CPU ${median(cpuMine).toFixed(2)} s against ${median(cpuTheirs).toFixed(2)} s (medians of ${reps})`,
        );
      }
    }
    out['disk entries left'] = left;
    if (ctx.cpuProf) {
      // A separate, profiled run (profiling slows it: its figures are not the ones above).
      const dir = profileDir('small-tasks');
      const prof = { dir, names: new Map<number, string>() } as NonNullable<Mr['prof']>;
      await runOnce({ ...self, label: 'profiled', prof }, files, 3, 1, ctx.log);
      ctx.log(`profiles from submit to the job's end (start-up and shutdown left out) in ${dir}:`);
      reportDir(dir, prof.names, ctx.log, { window: prof.window });
    }
    return out;
  },
};
