/**
 * Arbitration between an active coordinator and its standby: an atomic
 * test-and-set of an epoch, the same rule the FT VM's nodes follow on the
 * storage node (`mr vm storage`): claiming epoch e wins when the flag holds
 * e-1 (or e already, by the same node), and loses to a newer claim. Whoever
 * holds the newest epoch is the only coordinator that may serve.
 *
 * Arbiter is the one interface the coordinator uses; StorageArbiter talks to
 * the storage node's test-and-set route under a key of its own (default
 * "mr-coordinator", a VM id to the storage node) with the peer credential.
 */
import { Pool } from 'undici';
import { ERR_ARBITER_UNAVAILABLE } from '../errors.ts';

export interface ArbiterFlag {
  epoch: number;
  /** The node id holding `epoch` ('' when nobody claimed one yet). */
  owner: string;
}

export interface Arbiter {
  /** Where it is (for logs and errors). */
  readonly describe: string;
  /** The flag now. */
  current(): Promise<ArbiterFlag>;
  /** Claims `epoch` for `nodeId`: won, or lost to the holder it names (data). Unreachable: throws MR_ERR_ARBITER_UNAVAILABLE. */
  claim(nodeId: string, epoch: number): Promise<ArbiterFlag & { won: boolean }>;
  close(): Promise<void>;
}

export const DEFAULT_ARBITER_KEY = 'mr-coordinator';

/** The storage node's test-and-set (POST/GET /v1/vms/:key/tas). */
export class StorageArbiter implements Arbiter {
  readonly describe: string;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #headers: Record<string, string>;

  constructor(o: { url: string; key?: string | undefined; token?: string | undefined }) {
    const origin = new URL(o.url).origin;
    const key = o.key ?? DEFAULT_ARBITER_KEY;
    this.describe = `${origin} (key ${key})`;
    this.#pool = new Pool(origin, { connections: 2, headersTimeout: 3000, bodyTimeout: 3000, connect: { timeout: 1000 } });
    this.#path = `/v1/vms/${encodeURIComponent(key)}/tas`;
    this.#headers = { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) };
  }

  async #call(method: 'GET' | 'POST', body?: unknown): Promise<Record<string, unknown>> {
    let status: number;
    let text: string;
    try {
      const res = await this.#pool.request({ method, path: this.#path, headers: this.#headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw ERR_ARBITER_UNAVAILABLE(this.describe, (err as Error).message);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (status !== 200 || typeof json !== 'object' || json === null) throw ERR_ARBITER_UNAVAILABLE(this.describe, `${method} answered ${status}: ${text.slice(0, 200)}`);
    return json as Record<string, unknown>;
  }

  #flag(j: Record<string, unknown>): ArbiterFlag {
    if (!Number.isInteger(j['epoch']) || typeof j['owner'] !== 'string') throw ERR_ARBITER_UNAVAILABLE(this.describe, `an answer outside the contract: ${JSON.stringify(j).slice(0, 200)}`);
    return { epoch: j['epoch'] as number, owner: j['owner'] };
  }

  async current(): Promise<ArbiterFlag> {
    return this.#flag(await this.#call('GET'));
  }

  async claim(nodeId: string, epoch: number): Promise<ArbiterFlag & { won: boolean }> {
    const j = await this.#call('POST', { nodeId, epoch });
    if (typeof j['won'] !== 'boolean') throw ERR_ARBITER_UNAVAILABLE(this.describe, `an answer outside the contract: ${JSON.stringify(j).slice(0, 200)}`);
    return { won: j['won'], ...this.#flag(j) };
  }

  async close(): Promise<void> {
    await this.#pool.close().catch(() => {});
  }
}
