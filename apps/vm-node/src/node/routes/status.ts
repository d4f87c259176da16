/** GET /v1/vms/:id: the node's role, liveness, epoch, instruction count, log seqs, outputs held, peer and state hash. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorReply, VmParams, VmStatus } from '@mr/vmft-protocol';
import { ERR_UNKNOWN_VM } from '../../errors.ts';
import type { NodeRouteOptions } from './requests.ts';

const statusRoutes: FastifyPluginAsyncTypebox<NodeRouteOptions> = async (app, { vmId, driver }) => {
  app.get('/v1/vms/:id', {
    logLevel: 'warn',
    schema: { params: VmParams, response: { 200: VmStatus, '4xx': ErrorReply } },
  }, async (req) => {
    if (req.params.id !== vmId) throw ERR_UNKNOWN_VM(req.params.id);
    return driver.status();
  });
};

export default statusRoutes;
