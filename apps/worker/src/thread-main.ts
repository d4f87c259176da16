/**
 * A task thread: runs the tasks its slot is given, one at a time, with the
 * apps library, and answers each with its result or a coded error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as apps from '@mr/mapreduce-apps';
import { execute, type TaskRequest } from './task-runner.ts';
import { RecordSlot } from './record-slot.ts';

const port = parentPort!;
const { pluginDir, progress, record } = workerData as { pluginDir?: string; progress: BigInt64Array; record: SharedArrayBuffer };
/** Where user code is (jobs that skip bad records): the main thread reads it if the task hangs or the thread dies. */
const at = new RecordSlot(record);
const tellAt = (r: apps.InputRecord): void => at.write(r);
/** Adds to the slot's shared progress counter (the main thread reports it with heartbeats). */
const addProgress = (units: number): void => void Atomics.add(progress, 0, BigInt(units));
const loaded = pluginDir ? apps.loadPluginApps(pluginDir) : Promise.resolve([]);
const executors = { getApp: apps.getApp, runMapTask: apps.runMapTask, runReduceTask: apps.runReduceTask };

port.on('message', (m: { id: number; req: TaskRequest }) => {
  void (async () => {
    try {
      await loaded;
      // The task started: progress from its first instant (thread start-up is not the task's).
      addProgress(1);
      const result = await execute(executors, m.req, addProgress, m.req.skip ? tellAt : undefined);
      port.postMessage({ id: m.id, ok: true, result });
    } catch (err) {
      const e = err as Error & { code?: unknown; statusCode?: unknown; retryable?: unknown; record?: apps.InputRecord };
      port.postMessage({
        id: m.id,
        ok: false,
        error: {
          message: e?.message ?? String(err),
          ...(typeof e?.code === 'string' ? { code: e.code } : {}),
          ...(typeof e?.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
          ...(typeof e?.retryable === 'boolean' ? { retryable: e.retryable } : {}),
          ...(m.req.skip && typeof e?.record === 'object' && e.record !== null ? { record: e.record } : {}),
        },
      });
    }
  })();
});
