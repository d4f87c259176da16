import type { FastifyInstance } from 'fastify';
import { createRegistry } from '@mr/observability';
import { buildStorageApp } from './storage/app.ts';

export interface Listening {
  app: FastifyInstance;
  /** Base URL (http://host:port) the service listens on. */
  url: string;
  close(): Promise<void>;
}

export interface StartStorageOptions {
  host?: string;
  /** 0 for a free port. */
  port: number;
  dataDir: string;
  token?: string | undefined;
  logLevel?: string | false;
  telemetry?: boolean;
  blockSize?: number;
  blocks?: number;
}

/** Starts the storage role in this process (for `mr vm storage` and `mr local`). */
export async function startStorage(opts: StartStorageOptions): Promise<Listening> {
  const registry = createRegistry({ service: 'vm-storage' });
  const app = await buildStorageApp({
    dataDir: opts.dataDir,
    registry,
    token: opts.token,
    logLevel: opts.logLevel,
    telemetry: opts.telemetry,
    blockSize: opts.blockSize,
    blocks: opts.blocks,
  });
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return { app, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, close: () => app.close() };
}
