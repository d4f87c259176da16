/**
 * GET /v1/vms/:id/tas ({epoch, owner}; epoch 0, owner "" when unclaimed) and
 * POST /v1/vms/:id/tas ({nodeId, epoch} -> {won, epoch, owner}; 403 unregistered node, 409 epoch gap), and
 * POST /v1/vms/:id/fence (same shapes): the disk fence for an epoch arbitrated elsewhere (etcd), which may skip epochs.
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

  for (const what of ['tas', 'fence'] as const) {
    app.post(`/v1/vms/:id/${what}`, {
      config: peer,
      schema: { params: StorageVmParams, body: TasRequest, response: { 200: TasReply, '4xx': ErrorReply } },
    }, async (req) => {
      const { nodeId, epoch } = req.body;
      const name = what === 'tas' ? 'test-and-set' : 'fence';
      try {
        const r = what === 'tas' ? store.testAndSet(req.params.id, nodeId, epoch) : store.fence(req.params.id, nodeId, epoch);
        metrics.tas(req.params.id, r.won ? 'won' : 'lost');
        req.log.info({ vm: req.params.id, nodeId, epoch, won: r.won, owner: r.owner }, name);
        return r;
      } catch (err) {
        metrics.tas(req.params.id, 'refused');
        req.log.warn({ vm: req.params.id, nodeId, epoch, err: err instanceof Error ? err.message : String(err) }, `${name} refused`);
        throw err;
      }
    });
  }
};

export default tasRoutes;
