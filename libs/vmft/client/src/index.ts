/**
 * @mr/vmft-client: a client of one FT VM that follows the live primary.
 *
 *   const c = new VmClient({ nodes: [a, b], vmId: 'vm1' });
 *   const { value } = await c.incr('x');   // retried with the same request id until answered
 */
export { VmClient, type VmClientOptions, type VmRequest, type VmAnswer } from './client.ts';
export { ERR_VM_UNAVAILABLE, ERR_VM_REJECTED, ERR_CLIENT_CONFIG } from './errors.ts';
export { runLoad, type LoadOptions, type LoadReport } from './load.ts';
