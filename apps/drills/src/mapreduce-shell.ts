/**
 * The MapReduce half: a coordinator and N workers (`mr coordinator`,
 * `mr worker`) on loopback, a seeded wc corpus, the reference output from
 * `mr seq`, one job submitted over the job API and polled until it ends.
 * Workers that exit on their own while the job runs are started again (as
 * an operator's supervisor would); the drill's own kills are not undone
 * except by its `start` faults.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { checkRecoveries, checkSameLines, corpusFile, describeFault, progressRecovery, type FaultAction, type MapReduceWorkload, type ProgressSample, type Schedule } from '@mr/chaos';
import { drillEnv, Part, runMr, sleep } from './parts.ts';
import type { DrillClock, DrillShell, Verdicts } from './runner.ts';

/** A job that has not ended this long after submission fails the drill. */
const JOB_DEADLINE_MS = 180_000;
const POLL_MS = 100;

interface JobView {
  id: string;
  state: string;
  tasks: { map: { total: number; done: number }; reduce: { total: number; done: number } };
  attempts: { started: number; reissued: number; failed: number };
  error?: string;
}

export class MapReduceShell implements DrillShell {
  readonly #env: NodeJS.ProcessEnv;
  #coordinator: Part | undefined;
  #port = 0;
  #workers: (Part | undefined)[] = [];
  #parts: Part[] = [];
  #inputs: string[] = [];
  #want: string[] = [];
  #progress: ProgressSample[] = [];
  #job: JobView | undefined;
  #jobOver = false;
  #tearingDown = false;
  #workersStarted = 0;
  #selfExits = 0;

  constructor(
    readonly schedule: Schedule,
    readonly w: MapReduceWorkload,
    readonly dir: string,
    readonly clock: DrillClock,
    env: NodeJS.ProcessEnv,
  ) {
    this.#env = drillEnv(env);
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async setup(): Promise<void> {
    const input = join(this.dir, 'input');
    mkdirSync(input);
    for (let i = 0; i < this.w.files; i++) {
      const f = join(input, `pg-${i}.txt`);
      writeFileSync(f, corpusFile(this.schedule.seed, i, this.w.wordsPerFile));
      this.#inputs.push(f);
    }
    const seq = await runMr(['seq', '--app', this.w.app, '--output', join(this.dir, 'seq'), ...this.#inputs], { cwd: this.dir, env: this.#env, limitMs: 120_000 });
    if (seq.code !== 0) throw new Error(`mr seq exited ${seq.code}: ${seq.stderr.slice(-500)}`);
    this.#want = sortedLines(join(this.dir, 'seq'));
    await this.#startCoordinator();
    for (let i = 0; i < this.w.workers; i++) this.#startWorker(i);
    await this.#workersRegistered(60_000);
    // The job is accepted before time 0, so that the first faults hit a running job.
    await this.#submit();
  }

  /** Waits until every worker has registered (a cold start of a process can take seconds on a loaded machine). */
  async #workersRegistered(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    for (;;) {
      try {
        const r = await request(`${this.url}/v1/workers`, { headersTimeout: 2000, bodyTimeout: 2000 });
        const list = (await r.body.json()) as { workers?: { name: string }[] };
        const names = new Set((list.workers ?? []).map((w) => w.name));
        if (this.#workers.every((_, i) => names.has(`worker-${i}`))) return;
      } catch {
        // not up yet
      }
      if (performance.now() > deadline) throw new Error(`the ${this.w.workers} workers did not all register within ${ms / 1000} s\n${this.#workers.map((p) => p?.tail(400)).join('\n')}`);
      await sleep(100);
    }
  }

  async #startCoordinator(): Promise<string> {
    const p = new Part('coordinator', [
      'coordinator', '--port', String(this.#port), '--data', join(this.dir, 'data'), '--task-timeout', `${this.w.taskTimeoutMs}ms`,
      '--input-root', join(this.dir, 'input'), '--log-level', 'warn',
    ], { cwd: this.dir, env: this.#env });
    this.#parts.push(p);
    this.#coordinator = p;
    const m = await p.waitFor(/coordinator listening on http:\/\/127\.0\.0\.1:(\d+)/, 60_000);
    this.#port = Number(m[1]);
    return `coordinator pid ${p.pid} listening on ${this.url}`;
  }

  #startWorker(i: number): Part {
    const name = `worker-${i}`;
    const wd = join(this.dir, name);
    mkdirSync(wd, { recursive: true });
    const p = new Part(name, ['worker', '--coordinator', this.url, '--name', name, '--work-dir', wd, '--unreachable', '10s'], { cwd: wd, env: this.#env });
    this.#parts.push(p);
    this.#workers[i] = p;
    this.#workersStarted++;
    void p.exited.then((e) => {
      if (p.killedByDrill || this.#tearingDown || this.#jobOver || this.#workers[i] !== p) return;
      // Exited by itself while the job runs (e.g. the coordinator was gone too long): a supervisor restarts it.
      this.#selfExits++;
      this.clock.record('event', `${name} (pid ${p.pid}) exited by itself (${e.signal ?? `code ${e.code}`}); starting it again`);
      setTimeout(() => {
        if (!this.#tearingDown && !this.#jobOver && this.#workers[i] === p) this.#startWorker(i);
      }, 500);
    });
    return p;
  }

  #jobId = '';

  async #submit(): Promise<void> {
    const body = JSON.stringify({ app: this.w.app, inputs: this.#inputs, reduces: this.w.reduces, output: join(this.dir, 'out') });
    const r = await request(`${this.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `drill-${this.schedule.seed}` }, body });
    const created = (await r.body.json()) as { id?: string; message?: string };
    if (r.statusCode !== 201 || !created.id) throw new Error(`POST /v1/jobs answered ${r.statusCode}: ${JSON.stringify(created)}`);
    this.#jobId = created.id;
  }

  async workload(): Promise<void> {
    this.clock.record('event', `job ${this.#jobId} submitted (${this.w.files} files, ${this.w.reduces} reduces, ${this.w.workers} workers)`);
    const deadline = this.clock.now() + JOB_DEADLINE_MS;
    let wasDown = false;
    for (;;) {
      const atMs = this.clock.now();
      const job = await this.#poll(this.#jobId);
      if (!job) {
        if (!wasDown) this.clock.record('event', 'coordinator unreachable');
        wasDown = true;
        this.#progress.push({ atMs, done: undefined, finished: false });
      } else {
        if (wasDown) this.clock.record('event', `coordinator answering again; job ${job.state}, ${job.tasks.map.done}/${job.tasks.map.total} maps, ${job.tasks.reduce.done}/${job.tasks.reduce.total} reduces done`);
        wasDown = false;
        this.#job = job;
        const finished = ['succeeded', 'failed', 'cancelled'].includes(job.state);
        this.#progress.push({ atMs, done: job.tasks.map.done + job.tasks.reduce.done, finished });
        if (finished) {
          this.#jobOver = true;
          this.clock.record('event', `job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`);
          return;
        }
      }
      if (this.clock.now() > deadline) throw new Error(`the job did not end within ${JOB_DEADLINE_MS / 1000} s (last state ${this.#job?.state ?? 'unknown'})`);
      await sleep(POLL_MS);
    }
  }

  async #poll(id: string): Promise<JobView | undefined> {
    try {
      const r = await request(`${this.url}/v1/jobs/${id}`, { headersTimeout: 1000, bodyTimeout: 1000 });
      if (r.statusCode !== 200) {
        await r.body.text();
        return undefined;
      }
      return (await r.body.json()) as JobView;
    } catch {
      return undefined;
    }
  }

  #target(target: string): { part: Part | undefined; worker?: number } {
    if (target === 'coordinator') return { part: this.#coordinator };
    const m = /^worker-(\d+)$/.exec(target);
    if (m && Number(m[1]) < this.w.workers) return { part: this.#workers[Number(m[1])], worker: Number(m[1]) };
    throw new Error(`no process "${target}" in this drill`);
  }

  async exec(action: FaultAction): Promise<{ text: string; atMs: number }> {
    if (action.type === 'link') throw new Error('this drill has no fault proxy');
    const { part, worker } = this.#target(action.target);
    const atMs = this.clock.now();
    switch (action.type) {
      case 'kill':
      case 'stop':
      case 'cont': {
        const sig = action.type === 'kill' ? 'SIGKILL' : action.type === 'stop' ? 'SIGSTOP' : 'SIGCONT';
        if (!part?.alive) return { text: `${action.target} was not running: nothing to do`, atMs };
        part.signal(sig);
        if (sig === 'SIGKILL') await part.exited;
        return { text: `${sig} ${action.target} (pid ${part.pid})`, atMs };
      }
      case 'start': {
        if (part?.alive) return { text: `${action.target} already running (pid ${part.pid})`, atMs };
        if (worker !== undefined) return { text: `started ${action.target} (pid ${this.#startWorker(worker).pid})`, atMs };
        return { text: `started ${await this.#startCoordinator()}`, atMs };
      }
    }
  }

  async verdicts(firedAt: (number | undefined)[]): Promise<Verdicts> {
    const job = this.#job;
    const got = sortedLines(join(this.dir, 'out'));
    const recoveries = this.schedule.faults.flatMap((f, i) => {
      const at = firedAt[i];
      if (at === undefined || (f.action.type !== 'kill' && f.action.type !== 'stop')) return [];
      return [progressRecovery(describeFault(f), at, this.#progress)];
    });
    return {
      invariants: [
        { id: 'job-succeeded', ok: job?.state === 'succeeded', detail: job ? `job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}` : 'no job state was ever read' },
        { id: 'output-equals-seq', ...checkSameLines(got, this.#want) },
        { id: 'recovered-within-bound', ...checkRecoveries(recoveries, this.schedule.recoveryBoundMs) },
      ],
      recoveries,
      stats: {
        'job ms': Math.round(this.#progress.at(-1)?.atMs ?? 0),
        'map tasks': job?.tasks.map.total ?? 0,
        'reduce tasks': job?.tasks.reduce.total ?? 0,
        'attempts started': job?.attempts.started ?? 0,
        'attempts re-issued': job?.attempts.reissued ?? 0,
        'attempts failed': job?.attempts.failed ?? 0,
        'workers started': this.#workersStarted,
        'workers that exited by themselves': this.#selfExits,
        'faults fired': recoveries.length,
      },
    };
  }

  async teardown(): Promise<void> {
    this.#tearingDown = true;
    for (const p of this.#parts) p.signal('SIGKILL');
    await Promise.all(this.#parts.map((p) => p.exited));
  }
}

/** All non-empty lines of dir/mr-out*, sorted by code unit (the output files are ASCII-keyed or UTF-8; compare as strings). */
export function sortedLines(dir: string): string[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.startsWith('mr-out'));
  } catch {
    return [];
  }
  const lines: string[] = [];
  for (const f of files) for (const l of readFileSync(join(dir, f), 'utf8').split('\n')) if (l) lines.push(l);
  return lines.sort();
}
