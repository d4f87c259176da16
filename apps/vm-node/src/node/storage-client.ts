import { Pool } from 'undici';
import { Compile } from 'typebox/compile';
import { createError, type CodedError } from '@mr/errors';
import { DiskReadReply, DiskWriteReply, ErrorReply, TasFlagReply, TasReply, type TasFlag } from '@mr/vmft-protocol';
import { ERR_NOT_OWNER, ERR_STALE_EPOCH } from '../errors.ts';
import { ERR_STORAGE_UNAVAILABLE } from '../storage/errors.ts';
import type { Arbiter } from './arbiter.ts';

export type TasAnswer = TasReply;

/** The outcome of a disk write: done, or refused by fencing (`epoch`: the storage node's current epoch, newer than ours). */
export type WriteOutcome = { refused: false } | { refused: true; epoch: number; owner: string };

const checkFlag = Compile(TasFlagReply);
const checkTas = Compile(TasReply);
const checkRead = Compile(DiskReadReply);
const checkWrite = Compile(DiskWriteReply);
const checkError = Compile(ErrorReply);

/**
 * The node's client of the storage role (HTTP/1.1 keep-alive pool), with the
 * peer credential. Answers are checked against @mr/vmft-protocol's schemas.
 * Outcomes are data (a lost test-and-set, a fenced write); anything else
 * throws a coded error: the storage node's own (FT_ERR_NODE_NOT_REGISTERED,
 * FT_ERR_EPOCH_GAP, FT_ERR_UNKNOWN_VM, ...; match by `code`) or
 * FT_ERR_STORAGE_UNAVAILABLE (retryable) when it cannot be reached or answers
 * outside its contract.
 */
export class StorageClient implements Arbiter {
  readonly kind = 'storage';
  readonly url: string;
  #pool: Pool;
  #headers: Record<string, string>;
  #vm: string;
  #node: string;

  /** `token` is the peer credential (MR_PEER_TOKEN): storage accepts no other. */
  constructor(opts: { url: string; vmId: string; nodeId: string; token?: string | undefined }) {
    this.url = new URL(opts.url).origin;
    this.#pool = new Pool(this.url, { connections: 4, headersTimeout: 5000, bodyTimeout: 5000, connect: { timeout: 1000 } });
    this.#headers = { 'content-type': 'application/json' };
    if (opts.token) this.#headers['authorization'] = `Bearer ${opts.token}`;
    this.#vm = encodeURIComponent(opts.vmId);
    this.#node = opts.nodeId;
  }

  async #call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let status: number;
    let text: string;
    try {
      const res = await this.#pool.request({ method, path, headers: this.#headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw ERR_STORAGE_UNAVAILABLE(`${method} ${path}: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw ERR_STORAGE_UNAVAILABLE(`${method} ${path} answered ${status} with something that is not JSON: ${text.slice(0, 100)}`);
    }
    return { status, json };
  }

  /** The storage node's coded error from a non-200 answer (the same code, status and message). */
  #error(method: string, path: string, r: { status: number; json: unknown }): CodedError {
    if (checkError.Check(r.json)) return createError(r.json.code, '%s', r.status, { retryable: r.status >= 500 })(r.json.message);
    return ERR_STORAGE_UNAVAILABLE(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.json).slice(0, 200)}`);
  }

  #bad(what: string, json: unknown): CodedError {
    return ERR_STORAGE_UNAVAILABLE(`${what}: an answer outside the storage contract: ${JSON.stringify(json).slice(0, 200)}`);
  }

  /** The VM's current flag: who holds which epoch (epoch 0, owner "" when nobody claimed it). */
  async flag(): Promise<TasFlag> {
    const path = `/v1/vms/${this.#vm}/tas`;
    const r = await this.#call('GET', path);
    if (r.status !== 200) throw this.#error('GET', path, r);
    if (!checkFlag.Check(r.json)) throw this.#bad('flag', r.json);
    return { epoch: r.json.epoch, owner: r.json.owner };
  }

  /** Test-and-set for `epoch`: won, or lost to the holder it names (data). Refusals and network errors throw. */
  async tas(epoch: number): Promise<TasAnswer> {
    const path = `/v1/vms/${this.#vm}/tas`;
    const r = await this.#call('POST', path, { nodeId: this.#node, epoch });
    if (r.status !== 200) throw this.#error('POST', path, r);
    if (!checkTas.Check(r.json)) throw this.#bad('test-and-set', r.json);
    return { won: r.json.won, epoch: r.json.epoch, owner: r.json.owner };
  }

  /**
   * The disk fence for `epoch`, won at another arbiter (etcd): from now on the
   * storage node refuses disk writes of older epochs. Lost (data) when storage
   * already holds a newer epoch or this one for another node.
   */
  async fence(epoch: number): Promise<TasAnswer> {
    const path = `/v1/vms/${this.#vm}/fence`;
    const r = await this.#call('POST', path, { nodeId: this.#node, epoch });
    if (r.status !== 200) throw this.#error('POST', path, r);
    if (!checkTas.Check(r.json)) throw this.#bad('fence', r.json);
    return { won: r.json.won, epoch: r.json.epoch, owner: r.json.owner };
  }

  async read(block: number, count: number): Promise<Uint8Array> {
    const path = `/v1/vms/${this.#vm}/disk/${block}?count=${count}`;
    const r = await this.#call('GET', path);
    if (r.status !== 200) throw this.#error('GET', path, r);
    if (!checkRead.Check(r.json)) throw this.#bad('disk read', r.json);
    return new Uint8Array(Buffer.from(r.json.data, 'base64'));
  }

  /** Fenced write: done, or refused (data) when storage holds a newer epoch or another owner. */
  async write(block: number, data: Uint8Array, epoch: number): Promise<WriteOutcome> {
    const path = `/v1/vms/${this.#vm}/disk/${block}`;
    const r = await this.#call('PUT', path, { nodeId: this.#node, epoch, data: Buffer.from(data).toString('base64') });
    if (r.status === 200) {
      if (!checkWrite.Check(r.json)) throw this.#bad('disk write', r.json);
      return { refused: false };
    }
    const err = this.#error('PUT', path, r);
    if (err.code !== ERR_STALE_EPOCH.code && err.code !== ERR_NOT_OWNER.code) throw err;
    // Fenced: name the epoch that fenced us (the core stops on it).
    const cur = await this.flag().catch(() => ({ epoch: epoch + 1, owner: '' }));
    return { refused: true, epoch: Math.max(cur.epoch, epoch + 1), owner: cur.owner };
  }

  close(): Promise<void> {
    return this.#pool.close().catch(() => {});
  }
}
