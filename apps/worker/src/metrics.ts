import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { zeroCounter } from '@mr/observability';

const PHASES = ['map', 'reduce'] as const;
/** done: finished and reported; failed: the app or the runtime failed; abandoned: told to stop (cancel, lost lease) or stopping. */
const OUTCOMES = ['done', 'failed', 'abandoned'] as const;

/**
 * A worker's own metrics, served by `mr worker --metrics-port` (the
 * coordinator only knows what workers report; this is what each process did).
 * Bytes come from the task's built-in counters: a map reads its input split
 * and writes intermediate files; a reduce reads (shuffles in) the map outputs
 * of its partition and writes its output file.
 */
export function workerMetrics(registry: Registry, slots: number, running: () => number) {
  const registers = [registry];
  const m = {
    tasks: new Counter({ name: 'mr_worker_tasks_total', help: 'Task attempts this worker ran, by phase and outcome (done, failed, abandoned)', labelNames: ['phase', 'outcome'] as const, registers }),
    duration: new Histogram({
      name: 'mr_worker_task_duration_seconds',
      help: 'Time this worker spent on a task attempt, by phase',
      labelNames: ['phase'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    bytesRead: new Counter({ name: 'mr_worker_bytes_read_total', help: 'Bytes read by finished attempts: map input (phase map), intermediate map outputs (phase reduce)', labelNames: ['phase'] as const, registers }),
    bytesWritten: new Counter({ name: 'mr_worker_bytes_written_total', help: 'Bytes written by finished attempts: intermediate files (phase map), reduce output (phase reduce)', labelNames: ['phase'] as const, registers }),
    bytesShuffled: new Counter({ name: 'mr_worker_bytes_shuffled_total', help: 'Intermediate bytes this worker\'s reduces fetched from map outputs (the shuffle)', registers }),
  };
  zeroCounter(m.tasks, { phase: PHASES, outcome: OUTCOMES });
  zeroCounter(m.bytesRead, { phase: PHASES });
  zeroCounter(m.bytesWritten, { phase: PHASES });
  for (const phase of PHASES) m.duration.zero({ phase });
  new Gauge({ name: 'mr_worker_slots', help: 'Tasks this worker runs at once (--slots)', registers }).set(slots);
  new Gauge({ name: 'mr_worker_running_tasks', help: 'Task attempts running now', registers, collect() { this.set(running()); } });

  return {
    /** One attempt ended: its outcome, time, and (done) the bytes its counters report. */
    attempt(phase: 'map' | 'reduce', outcome: (typeof OUTCOMES)[number], seconds: number, counters?: Record<string, number>): void {
      m.tasks.inc({ phase, outcome });
      m.duration.observe({ phase }, seconds);
      if (!counters) return;
      const n = (k: string): number => (Number.isFinite(counters[k]) && counters[k]! > 0 ? counters[k]! : 0);
      if (phase === 'map') {
        m.bytesRead.inc({ phase }, n('mapInputBytes'));
        m.bytesWritten.inc({ phase }, n('intermediateBytes'));
      } else {
        m.bytesRead.inc({ phase }, n('reduceInputBytes'));
        m.bytesWritten.inc({ phase }, n('outputBytes'));
        m.bytesShuffled.inc(n('reduceInputBytes'));
      }
    },
  };
}
export type WorkerMetrics = ReturnType<typeof workerMetrics>;
