import { Counter, Gauge, type Registry } from 'prom-client';
import { zeroCounter } from '@mr/observability';
import { hasCode } from '@mr/errors';
import type { FastifyBaseLogger } from 'fastify';
import { ERR_NOT_OWNER } from '../errors.ts';
import type { DiskStore } from './store.ts';

/**
 * Invariant monitors of the storage node (ft_invariant_violations_total{vm,invariant}), must stay 0:
 * - `two-primaries-one-epoch-refused`: a disk write in the VM's current epoch (or a newer
 *   one) from a node that does not own it. Only the winner of an epoch's test-and-set
 *   writes in it, so the writer believes it is a primary it is not: two primaries in one
 *   epoch, as storage sees it. Detected and refused (the write changes nothing). A
 *   deposed primary's writes in an older epoch are the normal fencing (DESIGN rule 5)
 *   and are not counted here.
 */
export const STORAGE_INVARIANTS = ['two-primaries-one-epoch-refused'] as const;

/**
 * The storage node's metrics, every series per VM (`vm` label). A VM's
 * counters start at 0 the first time the node knows the VM (configured VMs:
 * at start; dev mode: at its first claim), so `increase()` sees the first event.
 */
export function storageMetrics(registry: Registry, store: DiskStore) {
  const registers = [registry];
  const tasTotal = new Counter({ name: 'ft_storage_tas_total', help: 'Test-and-set requests by VM and outcome', labelNames: ['vm', 'outcome'] as const, registers });
  const ioTotal = new Counter({ name: 'ft_storage_disk_ops_total', help: 'Disk block operations by VM, kind and outcome', labelNames: ['vm', 'op', 'outcome'] as const, registers });
  const invariants = new Counter({
    name: 'ft_invariant_violations_total',
    help: 'Invariant monitors, must stay 0: two-primaries-one-epoch-refused counts disk writes from a node acting as primary in an epoch it does not hold (storage\'s epoch or newer, another owner); refused',
    labelNames: ['vm', 'invariant'] as const,
    registers,
  });
  new Gauge({
    name: 'ft_storage_epoch',
    help: 'Current epoch per VM',
    labelNames: ['vm'] as const,
    registers,
    collect() {
      for (const vm of store.heldVms()) this.set({ vm }, store.flag(vm).epoch);
    },
  });
  new Gauge({ name: 'ft_storage_vms', help: 'VMs this storage node holds', registers, collect() { this.set(store.vmCount); } });

  const known = new Set<string>();
  /** Zeroes a held VM's counters once (unknown VM ids never get series: they would grow without bound). */
  const know = (vm: string): boolean => {
    if (known.has(vm)) return true;
    if (!store.holds(vm)) return false;
    known.add(vm);
    zeroCounter(tasTotal, { vm: [vm], outcome: ['won', 'lost', 'refused'] });
    zeroCounter(ioTotal, { vm: [vm], op: ['read', 'write'], outcome: ['ok', 'refused'] });
    zeroCounter(invariants, { vm: [vm], invariant: STORAGE_INVARIANTS });
    return true;
  };
  for (const vm of store.heldVms()) know(vm);

  return {
    tas(vm: string, outcome: 'won' | 'lost' | 'refused'): void {
      if (know(vm)) tasTotal.inc({ vm, outcome });
    },
    io(vm: string, op: 'read' | 'write', outcome: 'ok' | 'refused'): void {
      if (know(vm)) ioTotal.inc({ vm, op, outcome });
    },
    /** A refused write: counts it, and the invariant monitor when the writer acted as primary in an epoch it does not hold. */
    writeRefused(vm: string, nodeId: string, epoch: number, err: unknown, log: FastifyBaseLogger): void {
      if (!know(vm)) return;
      ioTotal.inc({ vm, op: 'write', outcome: 'refused' });
      const f = store.flag(vm);
      if (!hasCode(err, ERR_NOT_OWNER.code) || f.epoch === 0 || epoch < f.epoch) return;
      invariants.inc({ vm, invariant: 'two-primaries-one-epoch-refused' });
      log.error({ vm, nodeId, epoch, owner: f.owner, storageEpoch: f.epoch }, 'invariant violated (refused): a disk write from a node acting as primary in an epoch it does not hold');
    },
  };
}
export type StorageMetrics = ReturnType<typeof storageMetrics>;
