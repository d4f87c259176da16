import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { createService } from '@mr/service-kit';
import { DiskStore, MAX_BLOCKS_PER_OP } from './store.ts';
import { ERR_UNKNOWN_VM } from '../errors.ts';

/** A VM id: also a file name on the storage node, so no slashes and no leading dot. */
export const VmId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' });
const NodeId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' });
const Epoch = Type.Integer({ minimum: 1, maximum: 0xffffffff });
const ErrorBody = Type.Object({ statusCode: Type.Integer(), code: Type.String(), error: Type.String(), message: Type.String() });
const VmParams = Type.Object({ id: VmId });
const BlockParams = Type.Object({ id: VmId, block: Type.Integer({ minimum: 0 }) });
const Flag = Type.Object({ epoch: Type.Integer(), owner: Type.String() });

export interface StorageAppOptions {
  dataDir: string;
  registry: Registry;
  token?: string | undefined;
  logLevel?: string | false;
  telemetry?: boolean;
  /** Bytes per block (default 512). */
  blockSize?: number;
  /** Blocks per VM disk (default 4096). */
  blocks?: number;
}

/**
 * The storage node: each VM's virtual disk and its test-and-set flag.
 *
 *   GET  /v1/storage                  geometry {blockSize, blocks}
 *   GET  /v1/vms/:id                  {vmId, epoch, owner, blocks}
 *   GET  /v1/vms/:id/tas              {epoch, owner} (epoch 0, owner "" when unclaimed)
 *   POST /v1/vms/:id/tas              {nodeId, epoch} -> {won, epoch, owner}; 409 for an older epoch
 *   GET  /v1/vms/:id/disk/:block[?count=N]  {data: base64 (N blocks), epoch}
 *   PUT  /v1/vms/:id/disk/:block      {nodeId, epoch, data: base64 (whole blocks)} -> {ok, epoch}; 409 unless nodeId owns the current epoch
 *
 * Every mutation is on disk (fsync) before it is answered.
 */
export async function buildStorageApp(opts: StorageAppOptions): Promise<FastifyInstance & { store: DiskStore }> {
  const store = new DiskStore({ dir: opts.dataDir, blockSize: opts.blockSize ?? 512, blocks: opts.blocks ?? 4096 });
  const app = await createService({
    name: 'vm-storage',
    registry: opts.registry,
    token: opts.token,
    logLevel: opts.logLevel,
    telemetry: opts.telemetry,
    bodyLimit: 64 * 1024 + 2 * store.blockSize * MAX_BLOCKS_PER_OP,
  });
  const tasTotal = new Counter({ name: 'ft_storage_tas_total', help: 'Test-and-set requests by outcome', labelNames: ['outcome'] as const, registers: [opts.registry] });
  const ioTotal = new Counter({ name: 'ft_storage_disk_ops_total', help: 'Disk block operations by kind and outcome', labelNames: ['op', 'outcome'] as const, registers: [opts.registry] });
  const epochGauge = new Gauge({ name: 'ft_storage_epoch', help: 'Current epoch per VM', labelNames: ['vm'] as const, registers: [opts.registry] });

  app.get('/v1/storage', {
    schema: { response: { 200: Type.Object({ blockSize: Type.Integer(), blocks: Type.Integer() }) } },
  }, async () => ({ blockSize: store.blockSize, blocks: store.blocks }));

  app.get<{ Params: { id: string } }>('/v1/vms/:id', {
    schema: { params: VmParams, response: { 200: Type.Object({ vmId: Type.String(), epoch: Type.Integer(), owner: Type.String(), blocks: Type.Integer() }), '4xx': ErrorBody } },
  }, async (req) => {
    const f = store.flag(req.params.id);
    if (!f) throw ERR_UNKNOWN_VM(req.params.id);
    return { vmId: req.params.id, ...f, blocks: store.blocks };
  });

  app.get<{ Params: { id: string } }>('/v1/vms/:id/tas', {
    schema: { params: VmParams, response: { 200: Flag, '4xx': ErrorBody } },
  }, async (req) => store.flag(req.params.id) ?? { epoch: 0, owner: '' });

  app.post<{ Params: { id: string }; Body: { nodeId: string; epoch: number } }>('/v1/vms/:id/tas', {
    schema: {
      params: VmParams,
      body: Type.Object({ nodeId: NodeId, epoch: Epoch }, { additionalProperties: false }),
      response: { 200: Type.Object({ won: Type.Boolean(), epoch: Type.Integer(), owner: Type.String() }), '4xx': ErrorBody },
    },
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

  app.get<{ Params: { id: string; block: number }; Querystring: { count?: number } }>('/v1/vms/:id/disk/:block', {
    schema: { params: BlockParams, querystring: Type.Object({ count: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_BLOCKS_PER_OP })) }), response: { 200: Type.Object({ data: Type.String(), epoch: Type.Integer() }), '4xx': ErrorBody } },
  }, async (req) => {
    const data = store.read(req.params.id, req.params.block, req.query.count ?? 1);
    ioTotal.inc({ op: 'read', outcome: 'ok' });
    return { data: data.toString('base64'), epoch: store.flag(req.params.id)!.epoch };
  });

  app.put<{ Params: { id: string; block: number }; Body: { nodeId: string; epoch: number; data: string } }>('/v1/vms/:id/disk/:block', {
    schema: {
      params: BlockParams,
      body: Type.Object({ nodeId: NodeId, epoch: Epoch, data: Type.String({ maxLength: 4 * store.blockSize * MAX_BLOCKS_PER_OP, pattern: '^[A-Za-z0-9+/]*={0,2}$' }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ ok: Type.Boolean(), epoch: Type.Integer() }), '4xx': ErrorBody },
    },
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
