import { Pool } from 'undici';

export interface TasAnswer {
  won: boolean;
  epoch: number;
  owner: string;
}

/** A refused write: `epoch` is the storage node's current epoch (newer than ours). */
export class WriteRefused extends Error {
  constructor(
    readonly epoch: number,
    message: string,
  ) {
    super(message);
  }
}

/** The node's client of the storage role (HTTP/1.1 keep-alive pool). */
export class StorageClient {
  readonly url: string;
  #pool: Pool;
  #headers: Record<string, string>;
  #vm: string;
  #node: string;

  constructor(opts: { url: string; vmId: string; nodeId: string; token?: string | undefined }) {
    this.url = new URL(opts.url).origin;
    this.#pool = new Pool(this.url, { connections: 4, headersTimeout: 5000, bodyTimeout: 5000, connect: { timeout: 1000 } });
    this.#headers = { 'content-type': 'application/json' };
    if (opts.token) this.#headers['authorization'] = `Bearer ${opts.token}`;
    this.#vm = encodeURIComponent(opts.vmId);
    this.#node = opts.nodeId;
  }

  async #call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await this.#pool.request({ method, path, headers: this.#headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.body.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { message: text.slice(0, 200) };
    }
    return { status: res.statusCode, json };
  }

  /** The VM's current flag (epoch 0 when nobody claimed it). */
  async flag(): Promise<{ epoch: number; owner: string }> {
    const r = await this.#call('GET', `/v1/vms/${this.#vm}/tas`);
    if (r.status !== 200) throw new Error(`storage answered ${r.status}: ${String(r.json['message'])}`);
    return { epoch: Number(r.json['epoch']), owner: String(r.json['owner']) };
  }

  /** Test-and-set for `epoch`. A stale epoch (409) is a loss, not an error. Network errors throw. */
  async tas(epoch: number): Promise<TasAnswer> {
    const r = await this.#call('POST', `/v1/vms/${this.#vm}/tas`, { nodeId: this.#node, epoch });
    if (r.status === 200) return r.json as unknown as TasAnswer;
    if (r.status === 409) {
      const cur = await this.flag().catch(() => ({ epoch, owner: '' }));
      return { won: false, epoch: cur.epoch, owner: cur.owner };
    }
    throw new Error(`storage answered ${r.status}: ${String(r.json['message'])}`);
  }

  async read(block: number, count: number): Promise<Uint8Array> {
    const r = await this.#call('GET', `/v1/vms/${this.#vm}/disk/${block}?count=${count}`);
    if (r.status !== 200) throw new Error(`storage read answered ${r.status}: ${String(r.json['message'])}`);
    return new Uint8Array(Buffer.from(String(r.json['data']), 'base64'));
  }

  /** Fenced write; throws WriteRefused when storage holds a newer epoch (or another owner). */
  async write(block: number, data: Uint8Array, epoch: number): Promise<void> {
    const r = await this.#call('PUT', `/v1/vms/${this.#vm}/disk/${block}`, { nodeId: this.#node, epoch, data: Buffer.from(data).toString('base64') });
    if (r.status === 200) return;
    if (r.status === 409) {
      const cur = await this.flag().catch(() => ({ epoch: epoch + 1, owner: '' }));
      throw new WriteRefused(Math.max(cur.epoch, epoch + 1), String(r.json['message']));
    }
    throw new Error(`storage write answered ${r.status}: ${String(r.json['message'])}`);
  }

  close(): Promise<void> {
    return this.#pool.close().catch(() => {});
  }
}
