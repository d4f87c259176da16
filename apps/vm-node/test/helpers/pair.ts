/**
 * A storage node and a primary/backup pair in this process, on free loopback
 * ports, with real HTTP between them (for the hostile-peer tests).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { VmStatus } from '@mr/vmft-protocol';
import { startNode, startStorage, type ConnectionLimits, type DualServer, type StartStorageOptions } from '../../src/index.ts';

export type T = { after(fn: () => unknown): void };

export const TOKEN = 'client-token-for-tests';
export const PEER_TOKEN = 'peer-token-for-tests';

export interface Pair {
  storageUrl: string;
  /** The listening servers (connection stats). */
  servers: { storage: DualServer; primary: DualServer; backup: DualServer };
  primaryUrl: string;
  backupUrl: string;
  status(url: string): Promise<VmStatus | undefined>;
  /** incr as request `seq` of the pair's client session (opened once the pair is protected); a repeated seq is a retry. */
  incr(key: string, seq: number): Promise<number>;
}

/** `auth: false` starts everything in dev mode (no tokens at all). */
export async function startPair(t: T, storage: Partial<StartStorageOptions> = {}, nodes: { connectionLimits?: Partial<ConnectionLimits> } = {}, opts: { auth?: boolean } = {}): Promise<Pair> {
  const auth = opts.auth ?? true;
  const token = auth ? TOKEN : undefined;
  const peerToken = auth ? PEER_TOKEN : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'vm-pair-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = await startStorage({ port: 0, dataDir: dir, logLevel: false, token, peerToken, vms: new Map([['vm1', ['a', 'b']]]), ...storage });
  t.after(() => s.close());
  const common = { vmId: 'vm1', guest: 'kv', storageUrl: s.url, token, peerToken, port: 0, logLevel: false as const, suspectTicks: 50, ...nodes };
  const b = await startNode({ ...common, nodeId: 'b', role: 'backup' });
  t.after(() => b.close());
  const a = await startNode({ ...common, nodeId: 'a', role: 'primary', peerUrl: b.url });
  t.after(() => a.close());
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const status = async (url: string) => {
    const r = await request(`${url}/v1/vms/vm1`, { headers, headersTimeout: 5000, bodyTimeout: 5000 }).catch(() => undefined);
    if (!r) return undefined;
    if (r.statusCode !== 200) {
      await r.body.dump();
      return undefined;
    }
    return (await r.body.json()) as VmStatus;
  };
  let session: number | undefined;
  const openSession = async (): Promise<number> => {
    const r = await request(`${a.url}/v1/vms/vm1/sessions`, { method: 'POST', headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const body = (await r.body.json()) as { session: number; message?: string };
    if (r.statusCode !== 201) throw new Error(`open session answered ${r.statusCode}: ${body.message}`);
    return body.session;
  };
  const pair: Pair = {
    storageUrl: s.url,
    servers: { storage: s.app.server as unknown as DualServer, primary: a.app.server as unknown as DualServer, backup: b.app.server as unknown as DualServer },
    primaryUrl: a.url,
    backupUrl: b.url,
    status,
    async incr(key, seq) {
      session ??= await openSession();
      const r = await request(`${a.url}/v1/vms/vm1/requests`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ session, seq, ackBelow: seq, op: 'incr', key }),
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      const body = (await r.body.json()) as { value: number; message?: string };
      if (r.statusCode !== 200) throw new Error(`incr answered ${r.statusCode}: ${body.message}`);
      return body.value;
    },
  };
  await waitProtected(pair);
  return pair;
}

/** Waits until the primary is live with a connected backup that holds its log in the same epoch. */
export async function waitProtected(p: Pair, ms = 20_000): Promise<{ primary: VmStatus; backup: VmStatus }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const [sp, sb] = await Promise.all([p.status(p.primaryUrl), p.status(p.backupUrl)]);
    if (sp && sb && sp.live && sp.peer.state === 'connected' && sp.log.acked > 0 && sb.role === 'backup' && sb.epoch === sp.epoch && sb.log.sent > 0) return { primary: sp, backup: sb };
    if (Date.now() > deadline) throw new Error(`the pair is not protected: primary ${JSON.stringify(sp)}, backup ${JSON.stringify(sb)}`);
    await sleep(50);
  }
}
