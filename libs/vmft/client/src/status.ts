import { request, type Dispatcher } from 'undici';
import type { VmStatus } from '@mr/vmft-protocol';

export interface StatusOptions {
  vmId: string;
  token?: string | undefined;
  /** Time the node has to answer (default 2000 ms). */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  /** Extra request headers (e.g. an unsampled traceparent, so that a poller's requests are not traced). */
  headers?: Record<string, string>;
}

/**
 * GET /v1/vms/:id of one node: its role, epoch, instruction count, log, peer
 * and state hash; undefined when the node does not answer 200 in time (down,
 * starting, or not serving this VM). Shared by `mr local`, `mr vm`, the
 * dashboard and the tests, so all of them read a node the same way.
 */
export async function vmStatus(url: string, opts: StatusOptions): Promise<VmStatus | undefined> {
  if (!url) return undefined;
  const timeout = opts.timeoutMs ?? 2000;
  try {
    const r = await request(`${url.replace(/\/+$/, '')}/v1/vms/${encodeURIComponent(opts.vmId)}`, {
      headers: { ...opts.headers, ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
    if (r.statusCode !== 200) {
      await r.body.dump();
      return undefined;
    }
    return (await r.body.json()) as VmStatus;
  } catch {
    return undefined;
  }
}

/** The fields of a node's status that isProtected reads. */
export type ProtectionView = Pick<VmStatus, 'role' | 'live' | 'epoch'> & { log: Pick<VmStatus['log'], 'sent' | 'acked'>; peer: Pick<VmStatus['peer'], 'state'> };

/**
 * Whether `p` protects the VM with `b` as its backup right now: `p` is the
 * live primary with a connected peer that has acknowledged log, and `b` is a
 * backup in the same epoch that has received log. One failure can then be
 * survived without losing an acknowledged output.
 */
export function isProtected(p: ProtectionView | undefined, b: ProtectionView | undefined): boolean {
  return !!p && !!b && p.live && p.peer.state === 'connected' && p.log.acked > 0 && b.role === 'backup' && b.epoch === p.epoch && b.log.sent > 0;
}
