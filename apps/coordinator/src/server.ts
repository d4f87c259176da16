/**
 * Listen + graceful close. With exitWhenDone the returned `done` resolves
 * once every submitted job finished and the workers were told to exit.
 */
import type { FastifyInstance } from 'fastify';
import { checkBind } from '@mr/service-kit';
import { buildCoordinator, type CoordinatorOptions } from './app.ts';

export interface StartOptions extends CoordinatorOptions {
  host?: string;
  port?: number;
  /** How long to keep answering polls with 'exit' after all jobs finished. Default 1000 ms. */
  exitGraceMs?: number;
}

export interface RunningCoordinator {
  app: FastifyInstance;
  url: string;
  /** Resolves when the coordinator closed (exit-when-done or close()). */
  done: Promise<{ reason: string }>;
  close(reason?: string): Promise<void>;
}

export async function startCoordinator(o: StartOptions): Promise<RunningCoordinator> {
  const host = o.host ?? '127.0.0.1';
  const refused = checkBind(host, o.token);
  if (refused) throw new Error(refused);
  const app = await buildCoordinator(o);
  try {
    await app.listen({ host, port: o.port ?? 7070 });
  } catch (err) {
    await app.close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 7070);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let resolveDone!: (v: { reason: string }) => void;
  const done = new Promise<{ reason: string }>((r) => (resolveDone = r));
  let closing: Promise<void> | undefined;
  const close = (reason = 'closed'): Promise<void> =>
    (closing ??= (async () => {
      clearTimeout(grace);
      app.scheduler.off('event', onEvent);
      app.scheduler.off('told-exit', onTold);
      await app.close();
      resolveDone({ reason });
    })());
  let grace: ReturnType<typeof setTimeout> | undefined;
  const told = new Set<string>();
  // Close once every live worker was told to exit, or after the grace period (crashed workers never ask).
  const closeIfAllTold = (): void => {
    if (grace === undefined || !app.scheduler.core.allDone()) return;
    if (app.scheduler.core.workers().every((w) => told.has(w.id))) void close('all jobs done');
  };
  const onEvent = (e: { type: string }): void => {
    if (e.type === 'job-accepted') {
      clearTimeout(grace);
      grace = undefined;
      told.clear();
    }
    if (e.type !== 'all-done' || !o.exitWhenDone) return;
    // Parked polls were answered 'exit' already; workers between polls get it on their next one.
    clearTimeout(grace);
    grace = setTimeout(() => {
      if (app.scheduler.core.allDone()) void close('all jobs done');
    }, o.exitGraceMs ?? 1000);
    closeIfAllTold();
  };
  const onTold = (workerId: string): void => {
    told.add(workerId);
    closeIfAllTold();
  };
  app.scheduler.on('event', onEvent);
  app.scheduler.on('told-exit', onTold);
  app.scheduler.once('fatal', () => void close('fatal error'));
  if (o.exitWhenDone && app.scheduler.core.allDone()) onEvent({ type: 'all-done' });
  return { app, url, done, close };
}
