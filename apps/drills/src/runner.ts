/**
 * Carries out a schedule: the system's shell starts its parts, the workload
 * starts (time 0), each fault fires at its time, then the invariants are
 * checked and the report is assembled. Disruptive faults due after the
 * workload ended are recorded as skipped; the ones that undo earlier faults
 * (SIGCONT, start, heal) still run, at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFault, outcomeOf, type DrillReport, type FaultAction, type InvariantVerdict, type Recovery, type Schedule, type TimelineEntry } from '@mr/chaos';
import { sleep } from './parts.ts';

/** The drill's clock: ms since the workload started. */
export class DrillClock {
  #t0 = performance.now();
  readonly timeline: TimelineEntry[] = [];

  constructor(private readonly onLine: (line: string) => void) {}

  start(): void {
    this.#t0 = performance.now();
  }

  now(): number {
    return performance.now() - this.#t0;
  }

  record(kind: TimelineEntry['kind'], text: string): void {
    const atMs = Math.max(0, Math.round(this.now()));
    this.timeline.push({ atMs, kind, text });
    this.onLine(`${`+${atMs}ms`.padStart(9)} ${kind.padEnd(7)} ${text}`);
  }
}

export interface Verdicts {
  invariants: InvariantVerdict[];
  recoveries: Recovery[];
  stats: Record<string, number | string>;
  history?: unknown[];
}

/** What a system (MapReduce, FT VM) provides to the runner. */
export interface DrillShell {
  /** Starts the parts and prepares the workload; the clock has not started. */
  setup(): Promise<void>;
  /** Starts the workload (the clock has just started); resolves when it is over. */
  workload(): Promise<void>;
  /** Verdicts get, per fault of the schedule (same index), when it actually took effect. */
  /**
   * Carries out one fault; resolves with what was done (for the timeline) and
   * when (clock ms) the signal or link change took effect.
   */
  exec(action: FaultAction): Promise<{ text: string; atMs: number }>;
  verdicts(firedAt: (number | undefined)[]): Promise<Verdicts>;
  /** Kills every part; never throws. */
  teardown(): Promise<void>;
}

export interface RunOptions {
  schedule: Schedule;
  /** Progress lines (the timeline as it happens). */
  log?: (line: string) => void;
  /** Keep the drill's temp dir (data, logs) instead of removing it. */
  keep?: boolean;
  replayOf?: string;
  env?: NodeJS.ProcessEnv;
}

export async function runDrill(opts: RunOptions): Promise<DrillReport & { dir: string }> {
  const { schedule } = opts;
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), `mr-drill-${schedule.drill}-`));
  const clock = new DrillClock(log);
  const startedAt = new Date().toISOString();
  const wall0 = performance.now();
  const env = opts.env ?? process.env;
  const shell: DrillShell =
    schedule.workload.system === 'mapreduce'
      ? new (await import('./mapreduce-shell.ts')).MapReduceShell(schedule, schedule.workload, dir, clock, env)
      : new (await import('./vm-shell.ts')).VmShell(schedule, schedule.workload, dir, clock, env);
  let verdicts: Verdicts = { invariants: [], recoveries: [], stats: {} };
  let error: string | undefined;
  let workload: Promise<void> | undefined;
  try {
    log(`drill ${schedule.drill} seed ${schedule.seed} (${schedule.scale}): starting its parts in ${dir}`);
    await shell.setup();
    log(`drill ${schedule.drill}: parts up and workload ready after ${Math.round(performance.now() - wall0)} ms`);
    clock.start();
    clock.record('event', 'workload started');
    let over = false;
    workload = shell.workload().finally(() => {
      over = true;
    });
    workload.catch(() => {});
    const firedAt: (number | undefined)[] = schedule.faults.map(() => undefined);
    // A start that finished later than planned (a cold start on a loaded machine) shifts the
    // faults after it by as much, so that they keep their planned distance from it.
    let shiftMs = 0;
    for (const [i, f] of schedule.faults.entries()) {
      const due = f.atMs + shiftMs;
      while (!over && clock.now() < due) await sleep(Math.min(10, Math.max(1, due - clock.now())));
      // After the workload ended, only faults that undo earlier ones (SIGCONT, start, heal, release) still run.
      const restores = f.action.type === 'cont' || f.action.type === 'start' || f.action.type === 'release' || (f.action.type === 'link' && Object.keys(f.action.fault).length === 0);
      if (over && !restores) {
        clock.record('skipped', `${describeFault(f)}: the workload had ended`);
        continue;
      }
      try {
        // A tap or await waits for its event; if the workload ends first, the event will not come.
        const waits = (f.action.type === 'tap' && f.action.wait !== false) || f.action.type === 'await';
        const exec = shell.exec(f.action);
        const done = waits ? await Promise.race([exec, workload.then(() => undefined, () => undefined)]) : await exec;
        if (!done) {
          exec.catch(() => {});
          clock.record('skipped', `${describeFault(f)}: the workload ended before the event`);
          continue;
        }
        firedAt[i] = done.atMs;
        clock.record('fault', `${describeFault(f)}: ${done.text} (at +${Math.round(done.atMs)}ms)`);
        if (f.action.type === 'start' && clock.now() - f.atMs > shiftMs) {
          shiftMs = Math.round(clock.now() - f.atMs);
          if (i + 1 < schedule.faults.length) clock.record('event', `the start took until +${Math.round(clock.now())}ms: the faults after it move ${shiftMs} ms later`);
        }
      } catch (err) {
        clock.record('fault', `${describeFault(f)}: FAILED: ${(err as Error).message}`);
        throw err;
      }
    }
    await workload;
    clock.record('event', 'workload ended');
    verdicts = await shell.verdicts(firedAt);
  } catch (err) {
    error = (err as Error).message;
    log(`drill ${schedule.drill}: ${error}`);
  } finally {
    await shell.teardown();
    // After an error the workload may still be running: it ends once its parts are gone.
    await workload?.catch(() => {});
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
  const report: DrillReport & { dir: string } = {
    kind: 'mr-drill-report',
    schedule,
    startedAt,
    durationMs: Math.round(performance.now() - wall0),
    outcome: outcomeOf(verdicts.invariants, error, schedule.expectBroken, schedule.mayBreak),
    ...(error ? { error } : {}),
    timeline: clock.timeline,
    invariants: verdicts.invariants,
    recoveries: verdicts.recoveries,
    stats: verdicts.stats,
    ...(opts.replayOf ? { replayOf: opts.replayOf } : {}),
    ...(verdicts.history ? { history: verdicts.history } : {}),
    dir,
  };
  return report;
}
