/**
 * The joiner's side of `--join`: POST /v1/vms/:id/join on the live primary,
 * with retries while it is busy (409: it still has a backup) or unreachable,
 * following a 503's live hint only to a configured peer. The peer credential
 * goes only to configured peers (the caller's `allowed`).
 */
import type { FastifyBaseLogger } from 'fastify';
import { ERR_PEER_NOT_ALLOWED } from '../errors.ts';

/** Attempts before giving up, and the pause between them. */
const ATTEMPTS = 50;
const PAUSE_MS = 200;

export interface JoinOptions {
  url: string;
  vmId: string;
  nodeId: string;
  /** This node's URL, where the primary will stream the snapshot and the log. */
  selfUrl: string;
  peerToken?: string | undefined;
  /** Whether a URL is one of this node's configured peers. */
  allowed(url: string): boolean;
  /** Stop trying (the node closes). */
  closed(): boolean;
  log: FastifyBaseLogger;
}

/** Resolves once a primary accepted the join (it then connects to selfUrl); rejects with why it failed. */
export async function joinPrimary(o: JoinOptions, url = o.url): Promise<void> {
  const target = new URL(url).origin;
  if (!o.allowed(target)) throw ERR_PEER_NOT_ALLOWED(target);
  const { request } = await import('undici');
  let lastErr = '';
  for (let attempt = 0; attempt < ATTEMPTS && !o.closed(); attempt++) {
    try {
      const res = await request(`${target}/v1/vms/${encodeURIComponent(o.vmId)}/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(o.peerToken ? { authorization: `Bearer ${o.peerToken}` } : {}) },
        body: JSON.stringify({ nodeId: o.nodeId, url: o.selfUrl }),
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      const body = (await res.body.json().catch(() => ({}))) as { message?: string; live?: string };
      if (res.statusCode === 202 || res.statusCode === 200) {
        o.log.info({ primary: target }, 'join accepted: waiting for the snapshot');
        return;
      }
      lastErr = `${res.statusCode}: ${body.message ?? ''}`;
      if (res.statusCode === 503 && body.live && body.live !== target) {
        // Not the live primary: follow the hint, if it names a configured peer.
        if (o.allowed(body.live)) return joinPrimary(o, body.live);
        o.log.warn({ hint: body.live }, 'not following a live hint to a node that is not a configured peer');
      }
      if (res.statusCode < 500 && res.statusCode !== 409) break;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, PAUSE_MS));
  }
  o.log.error({ primary: target, err: lastErr }, 'join failed');
  throw new Error(`join of ${target} failed: ${lastErr}`);
}
