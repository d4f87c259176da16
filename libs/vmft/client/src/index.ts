/**
 * @mr/vmft-client: a client of one FT VM that follows the live primary, with
 * exactly-once requests through a client session.
 *
 *   const c = new VmClient({ nodes: [a, b], vmId: 'vm1' });
 *   const { value, session, seq } = await c.incr('x');  // retried with the same (session, seq) until answered
 *   // a failed request throws a coded error with outcome 'not-applied' | 'unknown'
 *   await c.close();                                     // closes the session and the connections
 */
export { VmClient, type VmClientOptions, type VmRequest, type VmAnswer, type SessionSlot } from './client.ts';
export { ERR_VM_UNAVAILABLE, ERR_VM_REJECTED, ERR_SESSION_EXPIRED, ERR_CLIENT_CONFIG, type Outcome, type VmRequestError } from './errors.ts';
export { runLoad, type LoadOptions, type LoadReport } from './load.ts';
export { vmStatus, isProtected, type StatusOptions, type ProtectionView } from './status.ts';
