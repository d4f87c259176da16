import type { Registry } from 'prom-client';
import { buildInfo, createService, type BuildInfo, type Service } from '@mr/service-kit';
import { MAX_BLOCKS_PER_OP } from '@mr/vmft-protocol';
import { DiskStore } from './store.ts';
import { storageMetrics } from './metrics.ts';
import type { StorageRouteOptions } from './routes/options.ts';
import vmRoutes from './routes/vm.ts';
import tasRoutes from './routes/tas.ts';
import diskRoutes from './routes/disk.ts';
import { dualProtocolServerFactory, type ConnectionLimits } from '../dual-server.ts';

export interface StorageAppOptions {
  dataDir: string;
  registry: Registry;
  /** The client token (MR_TOKEN); no storage route accepts it. */
  token?: string | undefined;
  /** The peer credential (MR_PEER_TOKEN): every storage route requires it when set. */
  peerToken?: string | undefined;
  /** The VMs this node stores and the node ids that may claim each (see DiskStore). */
  vms?: ReadonlyMap<string, readonly string[]> | undefined;
  /** Dev mode (no `vms`): how many VMs the node takes. */
  maxOpenVms?: number;
  logLevel?: string | false;
  telemetry?: boolean;
  /** Version and commit for GET /v1/version and the OpenAPI document. Default: package.json's version, MR_GIT_COMMIT. */
  build?: BuildInfo;
  /** Bytes per block (default 512). */
  blockSize?: number;
  /** Blocks per VM disk (default 4096). */
  blocks?: number;
  /** Connection cap and timeouts of the storage port (default DEFAULT_CONNECTION_LIMITS). */
  connectionLimits?: Partial<ConnectionLimits> | undefined;
}

/**
 * The storage node: each VM's virtual disk and its test-and-set flag. Every
 * route requires the peer credential; see @mr/vmft-protocol's schemas.ts for
 * the contract and tas.ts for the test-and-set rule.
 *
 *   GET  /v1/storage                  geometry {blockSize, blocks}
 *   GET  /v1/vms/:id                  {vmId, epoch, owner, blocks}
 *   GET  /v1/vms/:id/tas              {epoch, owner} (epoch 0, owner "" when unclaimed)
 *   POST /v1/vms/:id/tas              {nodeId, epoch} -> {won, epoch, owner}; 403 unregistered node, 409 epoch gap
 *   GET  /v1/vms/:id/disk/:block[?count=N]  {data: base64 (N blocks), epoch}
 *   PUT  /v1/vms/:id/disk/:block      {nodeId, epoch, data: base64 (whole blocks)} -> {ok, epoch}; 409 unless nodeId owns the current epoch
 *
 * Every mutation is on disk (fsync) before it is answered. The routes are in routes/.
 */
export async function buildStorageApp(opts: StorageAppOptions): Promise<Service & { store: DiskStore }> {
  const store = new DiskStore({ dir: opts.dataDir, blockSize: opts.blockSize ?? 512, blocks: opts.blocks ?? 4096, vms: opts.vms, maxOpenVms: opts.maxOpenVms });
  const app = await createService({
    name: 'vm-storage',
    registry: opts.registry,
    token: opts.token,
    roleTokens: { peer: opts.peerToken },
    logLevel: opts.logLevel,
    aboutAuth: 'peer',
    build: opts.build ?? buildInfo(new URL('../../package.json', import.meta.url), process.env),
    telemetry: opts.telemetry,
    bodyLimit: 64 * 1024 + 2 * store.blockSize * MAX_BLOCKS_PER_OP,
    fastify: { forceCloseConnections: true, serverFactory: dualProtocolServerFactory({ http2: false, limits: opts.connectionLimits }) },
  });
  const options: StorageRouteOptions = { store, metrics: storageMetrics(opts.registry, store) };
  await app.register(vmRoutes, options);
  await app.register(tasRoutes, options);
  await app.register(diskRoutes, options);

  app.addHook('onClose', async () => store.close());
  return Object.assign(app, { store });
}
