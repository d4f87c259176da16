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
import { MonitorScraper } from './monitors.ts';
import { FaultProxy } from './fault-proxy.ts';
import { isTapAction, Taps } from './taps.ts';

/** A job that has not ended this long after submission fails the drill. */
const JOB_DEADLINE_MS = 180_000;
const POLL_MS = 100;
/** At most this many jobs one after another in one drill. */
const MAX_JOBS = 20;

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
  #workloadOver = false;
  #tearingDown = false;
  #workersStarted = 0;
  #selfExits = 0;
  readonly #monitors = new MonitorScraper();
  /** The biggest input file's size: the jobs' split size. */
  #splitSize = 1;
  /** Fault proxies between each worker and the coordinator (proxyWorkers). */
  #proxies: FaultProxy[] = [];
  readonly #taps = new Taps(async (link) => this.#links(link));
  /** Event-driven drills submit their job once the first tap is armed (the runner's first fault, at time 0). */
  readonly #tapDriven: boolean;
  #firstArmed!: () => void;
  readonly #armed = new Promise<void>((r) => (this.#firstArmed = r));

  constructor(
    readonly schedule: Schedule,
    readonly w: MapReduceWorkload,
    readonly dir: string,
    readonly clock: DrillClock,
    env: NodeJS.ProcessEnv,
  ) {
    this.#env = drillEnv(env);
    this.#tapDriven = schedule.faults.some((f) => f.action.type === 'tap');
  }

  #links(link: string): { name: string; proxy: FaultProxy }[] {
    const all = this.#proxies.map((proxy, i) => ({ name: `worker-${i}->coordinator`, proxy }));
    if (link === 'workers->coordinator') return all;
    const one = all.find((p) => p.name === link);
    if (!one) throw new Error(`no fault proxy on link ${link} (this drill has ${all.map((p) => p.name).join(', ') || 'none'})`);
    return [one];
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async setup(): Promise<void> {
    const input = join(this.dir, 'input');
    mkdirSync(input);
    for (let i = 0; i < this.w.files; i++) {
      const f = join(input, `pg-${i}.txt`);
      const text = corpusFile(this.schedule.seed, i, this.w.wordsPerFile);
      writeFileSync(f, text);
      this.#splitSize = Math.max(this.#splitSize, Buffer.byteLength(text));
      this.#inputs.push(f);
    }
    const seq = await runMr(['seq', '--app', this.w.app, '--output', join(this.dir, 'seq'), ...this.#inputs], { cwd: this.dir, env: this.#env, limitMs: 120_000 });
    if (seq.code !== 0) throw new Error(`mr seq exited ${seq.code}: ${seq.stderr.slice(-500)}`);
    this.#want = sortedLines(join(this.dir, 'seq'));
    await this.#startCoordinator();
    if (this.w.proxyWorkers) for (let i = 0; i < this.w.workers; i++) this.#proxies.push(await FaultProxy.start(this.url, `worker-${i}->coordinator`));
    for (let i = 0; i < this.w.workers; i++) this.#startWorker(i);
    await this.#workersRegistered(60_000);
    // The job is accepted before time 0, so that the first faults hit a running job; an
    // event-driven drill's at time 0, once its first tap is armed, so that the tap sees every reply.
    if (!this.#tapDriven) await this.#submit();
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

  /** When (clock ms) a restarted coordinator listened again. */
  #coordinatorUp: number[] = [];

  async #startCoordinator(): Promise<string> {
    const p = new Part('coordinator', [
      'coordinator', '--port', String(this.#port), '--data', join(this.dir, 'data'), '--task-timeout', `${this.w.taskTimeoutMs}ms`,
      '--input-root', join(this.dir, 'input'), '--log-level', 'warn',
      ...(this.w.heartbeatTimeoutMs ? ['--heartbeat-timeout', `${this.w.heartbeatTimeoutMs}ms`] : []),
      ...(this.w.breakRule === 'attempt-fencing' ? ['--drill-unsafe', '--no-attempt-fencing'] : []),
    ], { cwd: this.dir, env: this.#env });
    this.#parts.push(p);
    this.#coordinator = p;
    const m = await p.waitFor(/coordinator listening on http:\/\/127\.0\.0\.1:(\d+)/, 60_000);
    this.#port = Number(m[1]);
    // Each coordinator process separately: a restarted one counts from 0 again.
    this.#monitors.watch(`coordinator (pid ${p.pid})`, this.url);
    return `coordinator pid ${p.pid} listening on ${this.url}`;
  }

  #startWorker(i: number): Part {
    const name = `worker-${i}`;
    const wd = join(this.dir, name);
    mkdirSync(wd, { recursive: true });
    const p = new Part(name, ['worker', '--coordinator', this.#proxies[i]?.url ?? this.url, '--name', name, '--work-dir', wd, '--unreachable', '10s'], { cwd: wd, env: this.#env });
    this.#parts.push(p);
    this.#workers[i] = p;
    this.#workersStarted++;
    void p.exited.then((e) => {
      if (p.killedByDrill || this.#tearingDown || this.#workloadOver || this.#workers[i] !== p) return;
      // Exited by itself while the job runs (e.g. the coordinator was gone too long): a supervisor restarts it.
      this.#selfExits++;
      this.clock.record('event', `${name} (pid ${p.pid}) exited by itself (${e.signal ?? `code ${e.code}`}); starting it again`);
      setTimeout(() => {
        if (!this.#tearingDown && !this.#workloadOver && this.#workers[i] === p) this.#startWorker(i);
      }, 500);
    });
    return p;
  }

  /** Jobs run one after another (each over the same inputs) until the fault schedule is over. */
  #jobs: JobView[] = [];
  #jobId = '';
  /** Tasks done in the jobs that already ended (progress counts across jobs). */
  #doneBefore = 0;

  async #submit(): Promise<void> {
    const k = this.#jobs.length;
    // One map task per input file (the coordinator combines small files up to its split size, 64 MiB by default).
    const body = JSON.stringify({ app: this.w.app, inputs: this.#inputs, reduces: this.w.reduces, output: join(this.dir, `out-${k}`), splitSize: this.#splitSize });
    const r = await request(`${this.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `drill-${this.schedule.seed}-${k}` }, body });
    const created = (await r.body.json()) as { id?: string; message?: string };
    if (r.statusCode !== 201 || !created.id) throw new Error(`POST /v1/jobs answered ${r.statusCode}: ${JSON.stringify(created)}`);
    this.#jobId = created.id;
  }

  /**
   * Polls the job until it ends; while faults are still to come, submits the next one (the
   * coordinator may be down then: the submission waits for it).
   */
  async workload(): Promise<void> {
    this.#monitors.start();
    try {
      if (this.#tapDriven) {
        await this.#armed;
        await this.#submit();
      }
      await this.#jobsUntilLastFault();
    } finally {
      await this.#monitors.stop();
    }
  }

  async #jobsUntilLastFault(): Promise<void> {
    const lastFaultMs = Math.max(0, ...this.schedule.faults.map((f) => f.atMs));
    for (;;) {
      this.clock.record('event', `job ${this.#jobId} submitted (${this.w.files} files, ${this.w.reduces} reduces, ${this.w.workers} workers)`);
      const job = await this.#follow();
      this.#jobs.push(job);
      this.#doneBefore += job.tasks.map.total + job.tasks.reduce.total;
      if (job.state !== 'succeeded' || this.clock.now() >= lastFaultMs || this.#jobs.length >= MAX_JOBS) break;
      await this.#submitWhenUp();
    }
    this.#workloadOver = true;
  }

  async #submitWhenUp(): Promise<void> {
    const deadline = this.clock.now() + JOB_DEADLINE_MS;
    for (;;) {
      try {
        return await this.#submit();
      } catch (err) {
        if (this.clock.now() > deadline) throw err;
        await sleep(POLL_MS);
      }
    }
  }

  async #follow(): Promise<JobView> {
    const deadline = this.clock.now() + JOB_DEADLINE_MS;
    let wasDown = false;
    let last: JobView | undefined;
    for (;;) {
      const job = await this.#poll(this.#jobId);
      // When the answer arrived: what it says was true then (the request can take long on a loaded machine).
      const atMs = this.clock.now();
      if (!job) {
        if (!wasDown) this.clock.record('event', 'coordinator unreachable');
        wasDown = true;
        this.#progress.push({ atMs, done: undefined, finished: false });
      } else {
        if (wasDown) this.clock.record('event', `coordinator answering again; job ${job.state}, ${job.tasks.map.done}/${job.tasks.map.total} maps, ${job.tasks.reduce.done}/${job.tasks.reduce.total} reduces done`);
        wasDown = false;
        last = job;
        const finished = ['succeeded', 'failed', 'cancelled'].includes(job.state);
        // A job's end counts as progress; the drill's end only when this is the last job.
        this.#progress.push({ atMs, done: this.#doneBefore + job.tasks.map.done + job.tasks.reduce.done + (finished ? 1 : 0), finished: false });
        if (finished) {
          this.clock.record('event', `job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`);
          return job;
        }
      }
      if (this.clock.now() > deadline) throw new Error(`job ${this.#jobId} did not end within ${JOB_DEADLINE_MS / 1000} s (last state ${last?.state ?? 'unknown'})`);
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
    if (isTapAction(action)) {
      const atMs = this.clock.now();
      let armedAt = atMs;
      const text = await this.#taps.exec(action, () => {
        armedAt = this.clock.now();
        this.#firstArmed();
      });
      // A waiting tap took effect when it fired, an await when its tap had; an armed tap or a release at once.
      return { text, atMs: (action.type === 'tap' && action.wait !== false) || action.type === 'await' ? this.clock.now() : armedAt };
    }
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
        const text = await this.#startCoordinator();
        this.#coordinatorUp.push(this.clock.now());
        return { text: `started ${text} after ${Math.round(this.clock.now() - atMs)} ms`, atMs };
      }
    }
  }

  async verdicts(firedAt: (number | undefined)[]): Promise<Verdicts> {
    const jobs = this.#jobs;
    const outputs = jobs.map((job, k) => ({ job, check: checkSameLines(sortedLines(join(this.dir, `out-${k}`)), this.#want) }));
    const badOutput = outputs.find((o) => !o.check.ok);
    const notOk = jobs.find((j) => j.state !== 'succeeded');
    const recoveries = this.schedule.faults.flatMap((f, i) => {
      const at = firedAt[i];
      const disruptive = f.action.type === 'kill' || f.action.type === 'stop' || (f.action.type === 'tap' && f.action.effect !== 'observe');
      if (at === undefined || !disruptive) return [];
      if ('target' in f.action && f.action.target === 'coordinator') {
        // Measured from when the coordinator listened again: a process's cold start is not the job's recovery.
        const up = this.#coordinatorUp.find((t) => t >= at);
        if (up === undefined) return [{ fault: describeFault(f), what: 'the coordinator listened again', recoveredMs: null }];
        const r = progressRecovery(`${describeFault(f)} (down ${Math.round(up - at)} ms until the restart listened)`, up, this.#progress);
        return [{ ...r, what: `${r.what}, counted from the restart listening` }];
      }
      return [progressRecovery(describeFault(f), at, this.#progress)];
    });
    const sum = (k: 'started' | 'reissued' | 'failed') => jobs.reduce((n, j) => n + j.attempts[k], 0);
    return {
      invariants: [
        {
          id: 'job-succeeded',
          ok: jobs.length > 0 && !notOk,
          detail: jobs.length === 0 ? 'no job ended' : notOk ? `job ${notOk.id} ${notOk.state}${notOk.error ? `: ${notOk.error}` : ''}` : `${jobs.length} job(s) succeeded: ${jobs.map((j) => j.id).join(', ')}`,
        },
        {
          id: 'output-equals-seq',
          ...(jobs.length === 0 ? { ok: false, detail: 'no job output' } : badOutput ? { ok: false, detail: `job ${badOutput.job.id}: ${badOutput.check.detail}` } : { ok: true, detail: `${jobs.length} job output(s), each ${outputs[0]!.check.detail}` }),
        },
        { id: 'monitors-zero', ...this.#monitors.verdict() },
        { id: 'recovered-within-bound', ...checkRecoveries(recoveries, this.schedule.recoveryBoundMs) },
      ],
      recoveries,
      stats: {
        jobs: jobs.length,
        'workload ms': Math.round(this.#progress.at(-1)?.atMs ?? 0),
        'map tasks per job': jobs[0]?.tasks.map.total ?? 0,
        'reduce tasks per job': jobs[0]?.tasks.reduce.total ?? 0,
        'attempts started': sum('started'),
        'attempts re-issued': sum('reissued'),
        'attempts failed': sum('failed'),
        'workers started': this.#workersStarted,
        'workers that exited by themselves': this.#selfExits,
        'faults fired': recoveries.length,
      },
    };
  }

  async teardown(): Promise<void> {
    this.#tearingDown = true;
    this.#taps.close();
    this.#firstArmed();
    for (const p of this.#parts) p.signal('SIGKILL');
    await Promise.all(this.#parts.map((p) => p.exited));
    await Promise.all(this.#proxies.map((p) => p.close()));
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
