/**
 * GET /v1/vms/:id/tas ({epoch, owner}; epoch 0, owner "" when unclaimed) and
 * POST /v1/vms/:id/tas ({nodeId, epoch} -> {won, epoch, owner}; 403 unregistered node, 409 epoch gap).
 * The rule itself is @mr/vmft-protocol's tas.ts, applied by the store.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorReply, StorageVmParams, TasFlagReply, TasReply, TasRequest } from '@mr/vmft-protocol';
import { peer, type StorageRouteOptions } from './options.ts';

const tasRoutes: FastifyPluginAsyncTypebox<StorageRouteOptions> = async (app, { store, metrics }) => {
  app.get('/v1/vms/:id/tas', {
    config: peer,
    schema: { params: StorageVmParams, response: { 200: TasFlagReply, '4xx': ErrorReply } },
  }, async (req) => store.flag(req.params.id));

  app.post('/v1/vms/:id/tas', {
    config: peer,
    schema: { params: StorageVmParams, body: TasRequest, response: { 200: TasReply, '4xx': ErrorReply } },
  }, async (req) => {
    const { nodeId, epoch } = req.body;
    try {
      const r = store.testAndSet(req.params.id, nodeId, epoch);
      metrics.tas(req.params.id, r.won ? 'won' : 'lost');
      req.log.info({ vm: req.params.id, nodeId, epoch, won: r.won, owner: r.owner }, 'test-and-set');
      return r;
    } catch (err) {
      metrics.tas(req.params.id, 'refused');
      req.log.warn({ vm: req.params.id, nodeId, epoch, err: err instanceof Error ? err.message : String(err) }, 'test-and-set refused');
      throw err;
    }
  });
};

export default tasRoutes;
