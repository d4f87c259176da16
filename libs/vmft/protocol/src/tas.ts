/**
 * The storage node's test-and-set rule, as one pure function: the real store
 * (`apps/vm-node/src/storage/store.ts`) and the simulator's storage model
 * (`libs/vmft/core/test/helpers/sim-cluster.ts`) both call it, so the
 * simulations test the rule that runs.
 *
 * Epochs advance one at a time: the flag starts at epoch 0 (nobody), and a
 * claim wins only for exactly the next epoch (current + 1) or as the owner's
 * retry of the current one. A claim of an older epoch, or of the current one
 * by another node, loses: that is data (the claimant learns who holds the VM),
 * not an error. A claim that skips epochs, or lies outside 1..MAX_EPOCH, is
 * refused: no correct node makes one (a node only ever learns epochs that
 * storage granted), and accepting it would let one request push the epoch to
 * the end of the u32 range the log frames carry, so that no node could ever
 * claim the next one.
 */

/** The highest epoch a claim may name: far below the u32 limit of the log frames (one failover per epoch). */
export const MAX_EPOCH = 0x7fff_ffff;

/** The per-VM fencing flag: who won which epoch (epoch 0, owner '' before the first claim). */
export interface TasFlag {
  readonly epoch: number;
  readonly owner: string;
}

export const UNCLAIMED: TasFlag = { epoch: 0, owner: '' };

export type TasDecision =
  /** The claim holds: `flag` is the new flag; `changed` is false for the owner's retry. */
  | { readonly outcome: 'won'; readonly flag: TasFlag; readonly changed: boolean }
  /** Someone else holds the claimed or a newer epoch: `flag` is unchanged (the answer names the holder). */
  | { readonly outcome: 'lost'; readonly flag: TasFlag }
  /** A claim no correct node makes; the flag stays as it is. */
  | { readonly outcome: 'refused'; readonly flag: TasFlag; readonly why: 'epoch-range' | 'epoch-gap' };

/** True for an epoch a claim may name (an integer in 1..MAX_EPOCH). */
export function validEpoch(epoch: number): boolean {
  return Number.isInteger(epoch) && epoch >= 1 && epoch <= MAX_EPOCH;
}

/** Decides `nodeId`'s claim of `epoch` against the current `flag`. Pure. */
export function decideTas(flag: TasFlag, nodeId: string, epoch: number): TasDecision {
  if (!validEpoch(epoch)) return { outcome: 'refused', flag, why: 'epoch-range' };
  if (epoch < flag.epoch) return { outcome: 'lost', flag };
  if (epoch === flag.epoch) return flag.owner === nodeId ? { outcome: 'won', flag, changed: false } : { outcome: 'lost', flag };
  if (epoch !== flag.epoch + 1) return { outcome: 'refused', flag, why: 'epoch-gap' };
  return { outcome: 'won', flag: { epoch, owner: nodeId }, changed: true };
}

/**
 * The fencing rule for disk writes: only the owner of the current epoch may
 * write. 'stale' for an older epoch, 'not-owner' for anything else that is not
 * the current owner in the current epoch. Pure.
 */
export function decideWrite(flag: TasFlag, nodeId: string, epoch: number): 'ok' | 'stale' | 'not-owner' {
  if (flag.epoch === 0) return 'not-owner';
  if (epoch < flag.epoch) return 'stale';
  return epoch === flag.epoch && nodeId === flag.owner ? 'ok' : 'not-owner';
}

/**
 * The storage node's disk fence when another service arbitrates (etcd, `mr vm
 * node --storage etcd://…`): the winner of `epoch` there tells the storage
 * node before it goes live, so writes of any older epoch are refused from
 * then on (decideWrite). The epoch was decided elsewhere, so it may skip
 * (a winner can crash before fencing); it never goes back: an older epoch, or
 * the current one named by another node, loses. Pure.
 */
export function decideFence(flag: TasFlag, nodeId: string, epoch: number): TasDecision {
  if (!validEpoch(epoch)) return { outcome: 'refused', flag, why: 'epoch-range' };
  if (epoch < flag.epoch) return { outcome: 'lost', flag };
  if (epoch === flag.epoch) return flag.owner === nodeId ? { outcome: 'won', flag, changed: false } : { outcome: 'lost', flag };
  return { outcome: 'won', flag: { epoch, owner: nodeId }, changed: true };
}
