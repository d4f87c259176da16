/**
 * The driver's storage port: test-and-set and disk I/O against the storage
 * node with retries (storage may be restarting), disk operations one at a
 * time in the order the core asked for them. Results come back as the core's
 * inputs through `drive`.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { DiskOp, FtInput } from '@mr/vmft-core';
import type { StorageClient } from './storage-client.ts';
import type { Arbiter } from './arbiter.ts';

/** Pause between attempts while storage does not answer. */
const RETRY_MS = 50;

export interface StoragePortOptions {
  /** The disk. */
  storage: StorageClient;
  /** Test-and-set: the storage node or etcd (arbiter.ts). */
  arbiter: Arbiter;
  log: FastifyBaseLogger;
  /** Feeds a result to the core (and carries out its effects). */
  drive(input: FtInput): void;
  /** Lets the machine run again (after a disk operation is done). */
  schedule(): void;
  /** The node closed: stop retrying. */
  closed(): boolean;
}

export class StoragePort {
  readonly #o: StoragePortOptions;
  #diskChain: Promise<void> = Promise.resolve();

  constructor(o: StoragePortOptions) {
    this.#o = o;
  }

  /** Asks test-and-set for `epoch` until the arbiter answers (a node cut off from it never goes live). */
  tas(epoch: number): void {
    const { arbiter, log, drive, closed } = this.#o;
    const attempt = (n: number) => {
      if (closed()) return;
      arbiter.tas(epoch).then(
        (r) => {
          log.info({ epoch, won: r.won, owner: r.owner, arbiter: arbiter.kind }, r.won ? 'won test-and-set' : 'lost test-and-set');
          drive({ type: 'tas-result', epoch, won: r.won, owner: r.owner });
          this.#o.schedule();
        },
        (err: Error) => {
          if (n % 20 === 0) log.warn({ epoch, err: err.message, arbiter: arbiter.kind }, 'test-and-set: arbiter unreachable, retrying');
          setTimeout(() => attempt(n + 1), RETRY_MS).unref();
        },
      );
    };
    attempt(0);
  }

  /** Carries out one disk operation after the ones before it; a fenced write is reported as `disk-refused`. */
  disk(d: DiskOp): void {
    const { storage, log, drive, schedule, closed } = this.#o;
    this.#diskChain = this.#diskChain.then(async () => {
      for (let n = 0; !closed(); n++) {
        try {
          if (d.op === 'read') {
            const data = await storage.read(d.block, d.count);
            drive({ type: 'disk-read-done', reqId: d.reqId, data });
          } else {
            const w = await storage.write(d.block, d.data, d.epoch);
            if (w.refused) {
              log.warn({ epoch: d.epoch, storageEpoch: w.epoch, owner: w.owner }, 'storage refused a disk write: fenced');
              drive({ type: 'disk-refused', reqId: d.reqId, epoch: w.epoch });
              return;
            }
          }
          schedule();
          return;
        } catch (err) {
          if (n % 20 === 0) log.warn({ op: d.op, block: d.block, err: (err as Error).message }, 'disk I/O failed, retrying');
          await new Promise((r) => setTimeout(r, RETRY_MS));
        }
      }
    });
  }
}
