/**
 * GET /v1/vms/:id/disk/:block[?count=N] ({data: base64 (N blocks), epoch}) and
 * PUT /v1/vms/:id/disk/:block ({nodeId, epoch, data: base64 whole blocks} -> {ok, epoch};
 * 409 unless nodeId owns the current epoch). A write is on disk (fsync) before it is answered.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DiskBlockParams, DiskReadQuery, DiskReadReply, DiskWriteReply, DiskWriteRequest, ErrorReply } from '@mr/vmft-protocol';
import { peer, type StorageRouteOptions } from './options.ts';

const diskRoutes: FastifyPluginAsyncTypebox<StorageRouteOptions> = async (app, { store, metrics }) => {
  app.get('/v1/vms/:id/disk/:block', {
    config: peer,
    schema: { params: DiskBlockParams, querystring: DiskReadQuery, response: { 200: DiskReadReply, '4xx': ErrorReply } },
  }, async (req) => {
    const data = store.read(req.params.id, req.params.block, req.query.count ?? 1);
    metrics.io(req.params.id, 'read', 'ok');
    return { data: data.toString('base64'), epoch: store.flag(req.params.id).epoch };
  });

  // The service's body limit bounds a write to MAX_BLOCKS_PER_OP blocks; the store checks whole blocks.
  app.put('/v1/vms/:id/disk/:block', {
    config: peer,
    schema: { params: DiskBlockParams, body: DiskWriteRequest, response: { 200: DiskWriteReply, '4xx': ErrorReply } },
  }, async (req) => {
    const data = Buffer.from(req.body.data, 'base64');
    try {
      store.write(req.params.id, req.body.nodeId, req.body.epoch, req.params.block, data);
    } catch (err) {
      metrics.writeRefused(req.params.id, req.body.nodeId, req.body.epoch, err, req.log);
      throw err;
    }
    metrics.io(req.params.id, 'write', 'ok');
    return { ok: true, epoch: req.body.epoch };
  });
};

export default diskRoutes;
