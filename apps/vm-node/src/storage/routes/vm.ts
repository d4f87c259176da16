/** GET /v1/storage (geometry) and GET /v1/vms/:id ({vmId, epoch, owner, blocks}). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorReply, StorageGeometry, StorageVmParams, StorageVmView } from '@mr/vmft-protocol';
import { ERR_UNKNOWN_VM } from '../../errors.ts';
import { peer, type StorageRouteOptions } from './options.ts';

const vmRoutes: FastifyPluginAsyncTypebox<StorageRouteOptions> = async (app, { store }) => {
  app.get('/v1/storage', { config: peer, schema: { response: { 200: StorageGeometry, '4xx': ErrorReply } } }, async () => ({ blockSize: store.blockSize, blocks: store.blocks }));

  app.get('/v1/vms/:id', {
    config: peer,
    schema: { params: StorageVmParams, response: { 200: StorageVmView, '4xx': ErrorReply } },
  }, async (req) => {
    const f = store.flag(req.params.id);
    if (!store.holds(req.params.id)) throw ERR_UNKNOWN_VM(req.params.id);
    return { vmId: req.params.id, ...f, blocks: store.blocks };
  });
};

export default vmRoutes;
