import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { createService } from '@mr/service-kit';
import {
  DiskBlockParams,
  DiskReadQuery,
  DiskReadReply,
  DiskWriteReply,
  DiskWriteRequest,
  ErrorReply,
  MAX_BLOCKS_PER_OP,
  StorageGeometry,
  StorageVmParams,
  StorageVmView,
  TasFlagReply,
  TasReply,
  TasRequest,
} from '@mr/vmft-protocol';
import { DiskStore } from './store.ts';
import { ERR_UNKNOWN_VM } from '../errors.ts';
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
  /** Bytes per block (default 512). */
  blockSize?: number;
  /** Blocks per VM disk (default 4096). */
  blocks?: number;
  /** Connection cap and timeouts of the storage port (default DEFAULT_CONNECTION_LIMITS). */
  connectionLimits?: Partial<ConnectionLimits> | undefined;
}

const peer = { auth: 'peer' } as const;

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
 * Every mutation is on disk (fsync) before it is answered.
 */
export async function buildStorageApp(opts: StorageAppOptions): Promise<FastifyInstance & { store: DiskStore }> {
  const store = new DiskStore({ dir: opts.dataDir, blockSize: opts.blockSize ?? 512, blocks: opts.blocks ?? 4096, vms: opts.vms, maxOpenVms: opts.maxOpenVms });
  const app = await createService({
    name: 'vm-storage',
    registry: opts.registry,
    token: opts.token,
    roleTokens: { peer: opts.peerToken },
    logLevel: opts.logLevel,
    telemetry: opts.telemetry,
    bodyLimit: 64 * 1024 + 2 * store.blockSize * MAX_BLOCKS_PER_OP,
    fastify: { forceCloseConnections: true, serverFactory: dualProtocolServerFactory({ http2: false, limits: opts.connectionLimits }) },
  });
  const tasTotal = new Counter({ name: 'ft_storage_tas_total', help: 'Test-and-set requests by outcome', labelNames: ['outcome'] as const, registers: [opts.registry] });
  const ioTotal = new Counter({ name: 'ft_storage_disk_ops_total', help: 'Disk block operations by kind and outcome', labelNames: ['op', 'outcome'] as const, registers: [opts.registry] });
  const epochGauge = new Gauge({ name: 'ft_storage_epoch', help: 'Current epoch per VM', labelNames: ['vm'] as const, registers: [opts.registry] });
  new Gauge({ name: 'ft_storage_vms', help: 'VMs this storage node holds', registers: [opts.registry], collect() { this.set(store.vmCount); } });

  app.get('/v1/storage', { config: peer, schema: { response: { 200: StorageGeometry } } }, async () => ({ blockSize: store.blockSize, blocks: store.blocks }));

  app.get<{ Params: StorageVmParams }>('/v1/vms/:id', {
    config: peer,
    schema: { params: StorageVmParams, response: { 200: StorageVmView, '4xx': ErrorReply } },
  }, async (req) => {
    const f = store.flag(req.params.id);
    if (!store.holds(req.params.id)) throw ERR_UNKNOWN_VM(req.params.id);
    return { vmId: req.params.id, ...f, blocks: store.blocks };
  });

  app.get<{ Params: StorageVmParams }>('/v1/vms/:id/tas', {
    config: peer,
    schema: { params: StorageVmParams, response: { 200: TasFlagReply, '4xx': ErrorReply } },
  }, async (req) => store.flag(req.params.id));

  app.post<{ Params: StorageVmParams; Body: TasRequest }>('/v1/vms/:id/tas', {
    config: peer,
    schema: { params: StorageVmParams, body: TasRequest, response: { 200: TasReply, '4xx': ErrorReply } },
  }, async (req) => {
    try {
      const r = store.testAndSet(req.params.id, req.body.nodeId, req.body.epoch);
      tasTotal.inc({ outcome: r.won ? 'won' : 'lost' });
      epochGauge.set({ vm: req.params.id }, r.epoch);
      req.log.info({ vm: req.params.id, nodeId: req.body.nodeId, epoch: req.body.epoch, won: r.won, owner: r.owner }, 'test-and-set');
      return r;
    } catch (err) {
      tasTotal.inc({ outcome: 'refused' });
      req.log.warn({ vm: req.params.id, nodeId: req.body.nodeId, epoch: req.body.epoch, err: (err as Error).message }, 'test-and-set refused');
      throw err;
    }
  });

  app.get<{ Params: DiskBlockParams; Querystring: DiskReadQuery }>('/v1/vms/:id/disk/:block', {
    config: peer,
    schema: { params: DiskBlockParams, querystring: DiskReadQuery, response: { 200: DiskReadReply, '4xx': ErrorReply } },
  }, async (req) => {
    const data = store.read(req.params.id, req.params.block, req.query.count ?? 1);
    ioTotal.inc({ op: 'read', outcome: 'ok' });
    return { data: data.toString('base64'), epoch: store.flag(req.params.id).epoch };
  });

  // The body limit (above) bounds a write to MAX_BLOCKS_PER_OP blocks; the store checks whole blocks.
  app.put<{ Params: DiskBlockParams; Body: DiskWriteRequest }>('/v1/vms/:id/disk/:block', {
    config: peer,
    schema: { params: DiskBlockParams, body: DiskWriteRequest, response: { 200: DiskWriteReply, '4xx': ErrorReply } },
  }, async (req) => {
    const data = Buffer.from(req.body.data, 'base64');
    try {
      store.write(req.params.id, req.body.nodeId, req.body.epoch, req.params.block, data);
    } catch (err) {
      ioTotal.inc({ op: 'write', outcome: 'refused' });
      throw err;
    }
    ioTotal.inc({ op: 'write', outcome: 'ok' });
    return { ok: true, epoch: req.body.epoch };
  });

  app.addHook('onClose', async () => store.close());
  return Object.assign(app, { store });
}
