/**
 * Who arbitrates a VM's epochs: the test-and-set that decides which node may
 * be primary, and the flag a backup checks before it takes a log stream.
 *
 * - `storage` (`--storage http://…`): the storage node, as in the paper; its
 *   flag also fences the virtual disk.
 * - `etcd` (`--storage etcd://h1:2379,h2:2379,… --disk http://storage…`): an
 *   etcd v3 cluster, so arbitration survives the loss of any minority of its
 *   members. Test-and-set is one etcd transaction that compares the epoch
 *   key's mod revision (create revision 0 when unclaimed) with the one the
 *   decision was made on (decideTas, the storage node's rule): two claimants
 *   that read the same flag cannot both commit. The winner then fences the
 *   storage node's disk at that epoch (decideFence) before it reports the win,
 *   so a deposed primary's disk writes are refused from then on. The virtual
 *   disks stay on the storage node.
 *
 * Every node of a VM must use the same arbiter (the storage node's own
 * test-and-set and an etcd claim know nothing of each other).
 */
import { Etcd3, type IKeyValue } from 'etcd3';
import { Compile } from 'typebox/compile';
import { createError } from '@mr/errors';
import { decideTas, MAX_EPOCH, UNCLAIMED, TasFlagReply, type TasFlag, type TasReply } from '@mr/vmft-protocol';
import type { StorageClient } from './storage-client.ts';
import { ERR_BAD_EPOCH, ERR_EPOCH_GAP } from '../storage/errors.ts';
import type { ArbiterConfig } from './arbiter-config.ts';

export type { ArbiterConfig } from './arbiter-config.ts';

/** What a node asks its arbiter. Outcomes are data; refusals and unreachability throw coded errors. */
export interface Arbiter {
  readonly kind: 'storage' | 'etcd';
  /** The VM's current flag (epoch 0, owner "" when nobody claimed it). */
  flag(): Promise<TasFlag>;
  /** Test-and-set for `epoch` (idempotent for the winner's retry). */
  tas(epoch: number): Promise<TasReply>;
  close(): Promise<void>;
}

export const ERR_ARBITER_UNAVAILABLE = createError<[string]>('FT_ERR_ARBITER_UNAVAILABLE', 'arbiter unavailable: %s', 503, { retryable: true });
export const ERR_BAD_ARBITER_FLAG = createError<[string, string]>('FT_ERR_BAD_ARBITER_FLAG', 'the epoch key of VM "%s" in etcd is not a flag: %s', 500, { retryable: false });

/** The arbiter a config names: the storage client itself, or etcd fencing through it. */
export function createArbiter(cfg: ArbiterConfig, o: { vmId: string; nodeId: string; storage: StorageClient; callTimeoutMs?: number }): Arbiter {
  return cfg.kind === 'storage' ? o.storage : new EtcdArbiter({ ...o, endpoints: cfg.endpoints });
}

const checkFlag = Compile(TasFlagReply);
/** Compare-and-put rounds before a claim gives up as unavailable (each lost round means the flag moved: decide again). */
const MAX_ROUNDS = 8;

export class EtcdArbiter implements Arbiter {
  readonly kind = 'etcd';
  readonly key: string;
  readonly #client: Etcd3;
  readonly #o: { vmId: string; nodeId: string; storage: StorageClient; callTimeoutMs: number };

  /** `callTimeoutMs`: the deadline of one etcd call (default 2000 ms; the client retries on another member within it). */
  constructor(o: { vmId: string; nodeId: string; storage: StorageClient; endpoints: readonly string[]; callTimeoutMs?: number }) {
    this.#o = { callTimeoutMs: 2000, ...o };
    this.key = `/mr-ft/vms/${o.vmId}/epoch`;
    this.#client = new Etcd3({
      hosts: [...o.endpoints],
      dialTimeout: 1000,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.#o.callTimeoutMs }),
    });
  }

  async #read(): Promise<{ flag: TasFlag; kv: IKeyValue | undefined }> {
    let kv: IKeyValue | undefined;
    try {
      kv = (await this.#client.get(this.key).exec()).kvs[0];
    } catch (err) {
      throw ERR_ARBITER_UNAVAILABLE(`etcd get ${this.key}: ${(err as Error).message}`);
    }
    if (!kv) return { flag: UNCLAIMED, kv };
    let json: unknown;
    try {
      json = JSON.parse(kv.value.toString('utf8'));
    } catch {
      json = undefined;
    }
    if (!checkFlag.Check(json)) throw ERR_BAD_ARBITER_FLAG(this.#o.vmId, kv.value.toString('utf8').slice(0, 100));
    return { flag: { epoch: json.epoch, owner: json.owner }, kv };
  }

  async flag(): Promise<TasFlag> {
    return (await this.#read()).flag;
  }

  async tas(epoch: number): Promise<TasReply> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const { flag, kv } = await this.#read();
      const d = decideTas(flag, this.#o.nodeId, epoch);
      if (d.outcome === 'refused') throw d.why === 'epoch-gap' ? ERR_EPOCH_GAP(epoch, flag.epoch) : ERR_BAD_EPOCH(epoch, MAX_EPOCH);
      if (d.outcome === 'lost') return { won: false, epoch: flag.epoch, owner: flag.owner };
      if (d.changed) {
        const cmp = kv ? this.#client.if(this.key, 'Mod', '==', kv.mod_revision) : this.#client.if(this.key, 'Create', '==', 0);
        let committed: boolean;
        try {
          committed = (await cmp.then(this.#client.put(this.key).value(JSON.stringify(d.flag))).commit()).succeeded;
        } catch (err) {
          // The put may have committed: the next round reads the flag and decides again (a winner's retry is won).
          throw ERR_ARBITER_UNAVAILABLE(`etcd transaction on ${this.key}: ${(err as Error).message}`);
        }
        if (!committed) continue;
      }
      // Won at etcd: fence the disk at this epoch before anyone acts on the win.
      const f = await this.#o.storage.fence(epoch);
      if (!f.won) return f;
      return { won: true, epoch, owner: this.#o.nodeId };
    }
    throw ERR_ARBITER_UNAVAILABLE(`etcd: the flag of ${this.#o.vmId} kept moving for ${MAX_ROUNDS} rounds`);
  }

  async close(): Promise<void> {
    this.#client.close();
  }
}
