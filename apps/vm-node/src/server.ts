import type { FastifyInstance } from 'fastify';
import { createRegistry } from '@mr/observability';
import { buildStorageApp } from './storage/app.ts';
import { buildNodeApp, type NodeAppOptions } from './node/app.ts';
import { StorageClient } from './node/storage-client.ts';
import { createArbiter } from './node/arbiter.ts';
import type { VmDriver } from './node/driver.ts';
import type { ConnectionLimits } from './dual-server.ts';

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
  /** The client token (MR_TOKEN): no storage route accepts it. */
  token?: string | undefined;
  /** The peer credential (MR_PEER_TOKEN): every storage route requires it when set. */
  peerToken?: string | undefined;
  /** The VMs stored here and the node ids that may claim each (`--vm vm1=a,b`); without it, dev mode (any ids, at most maxOpenVms VMs). */
  vms?: ReadonlyMap<string, readonly string[]> | undefined;
  maxOpenVms?: number;
  /** Connection cap and timeouts of the storage port (default DEFAULT_CONNECTION_LIMITS). */
  connectionLimits?: Partial<ConnectionLimits> | undefined;
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
    peerToken: opts.peerToken,
    vms: opts.vms,
    maxOpenVms: opts.maxOpenVms,
    connectionLimits: opts.connectionLimits,
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

export interface StartNodeOptions extends Omit<NodeAppOptions, 'registry' | 'startEpoch'> {
  host?: string;
  /** 0 for a free port. */
  port: number;
  /** URL other nodes and clients reach this node at (default http://host:port). */
  advertiseUrl?: string;
}

/**
 * Starts a primary, backup or joining node in this process (for `mr vm node`
 * and `mr local`). A primary claims the epoch after the one storage holds, so
 * a restarted VM fences whatever ran before it.
 */
export async function startNode(opts: StartNodeOptions): Promise<Listening & { driver: VmDriver }> {
  // Every series of a node names its VM and node: two VM pairs scraped together never look like one.
  const registry = createRegistry({ service: 'vm-node', labels: { vm: opts.vmId, node: opts.nodeId } });
  let startEpoch = 1;
  if (opts.role === 'primary' && !opts.joinUrl) {
    const storage = new StorageClient({ url: opts.storageUrl, vmId: opts.vmId, nodeId: opts.nodeId, token: opts.peerToken });
    const arbiter = createArbiter(opts.arbiter ?? { kind: 'storage' }, { vmId: opts.vmId, nodeId: opts.nodeId, storage });
    try {
      startEpoch = (await arbiter.flag()).epoch + 1;
    } finally {
      if (arbiter !== storage) await arbiter.close();
      await storage.close();
    }
  }
  const { app, driver } = await buildNodeApp({ ...opts, registry, startEpoch });
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const url = opts.advertiseUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  try {
    await driver.start(url);
  } catch (err) {
    await app.close();
    throw err;
  }
  return { app, url, driver, close: () => app.close() };
}
