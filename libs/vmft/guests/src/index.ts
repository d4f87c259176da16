/**
 * @mr/vmft-guests — the guest programs shipped with the FT VM, assembled, plus
 * the packet codecs a host needs to talk to them.
 *
 * ```ts
 * import { getGuest, encodeKvRequest, decodeKvResponse } from '@mr/vmft-guests';
 * const cpu = new Cpu(getGuest('kv'), host);      // memory: DEFAULT_MEMORY_SIZE (1 MiB)
 * cpu.deliverPacket(encodeKvRequest({ tag: 1, op: 'open-session' }));
 * // host.transmit(packet) → decodeKvResponse(packet) = { tag: 1, status: 'ok', value: '256' }  (the session id)
 * cpu.deliverPacket(encodeKvRequest({ tag: 2, op: 'incr', session: 256, seq: 1, ackBelow: 1, key: 'x' }));
 * // host.transmit(packet) → decodeKvResponse(packet) = { tag: 2, status: 'ok', value: '1' }
 * ```
 *
 * Guests:
 * - `kv`: key-value server with client sessions: exactly-once requests in bounded
 *   memory (kv.ts documents the packets and the session rules).
 * - `bank`: transfers between 16 accounts, total conserved; balances loaded from
 *   disk block 0 at boot (the host must answer the disk read), written back
 *   after each transfer (bank.ts).
 * - `cpu`: compute-bound sieve for the speed benchmark; patch the `rounds`
 *   word (symbol address) to make it halt; `primes`/`checksum` hold results.
 * - `timer`: timer-driven, reads clock and random on each tick (timer.ts).
 *
 * Every guest arms its NIC receive buffer itself; a host delivers a packet
 * only when `cpu.nicRxReady` (deliverPacket returns false otherwise).
 */
import { readFileSync } from 'node:fs';
import { assemble, type Program } from '@mr/vmft-cpu';
import { createError } from '@mr/errors';

export * from './kv.ts';
export * from './bank.ts';
export * from './timer.ts';
export { GuestHarness, type HarnessOptions, type RecordedRead } from './harness.ts';

export const GUEST_NAMES = ['kv', 'bank', 'cpu', 'timer'] as const;
export type GuestName = (typeof GUEST_NAMES)[number];
export const ErrUnknownGuest = createError<[string, string]>('FT_ERR_UNKNOWN_GUEST', 'unknown guest "%s" (known: %s)', 400);

export function isGuestName(name: string): name is GuestName {
  return (GUEST_NAMES as readonly string[]).includes(name);
}

/** The assembly source of a guest. */
export function guestSource(name: string): string {
  if (!isGuestName(name)) throw ErrUnknownGuest(name, GUEST_NAMES.join(', '));
  return readFileSync(new URL(`./asm/${name}.s`, import.meta.url), 'utf8');
}

const cache = new Map<string, Program>();

/** The kv guest's one instruction that answers a remembered retry from the session window. */
const KV_REPLAY_LINE = /^(\s*)beq r9, r5, h_replay\b.*$/m;

export interface GuestVariant {
  /**
   * kv only. false BREAKS THE RULE on purpose (chaos drills): a retry of a
   * remembered seq is applied again instead of getting the remembered answer.
   * The variant is another program (another id): both nodes of a pair must run it.
   */
  dedup?: boolean;
}

/** The assembled guest (cached; Programs are immutable, share them freely). */
export function getGuest(name: string, variant: GuestVariant = {}): Program {
  if (!isGuestName(name)) throw ErrUnknownGuest(name, GUEST_NAMES.join(', '));
  const noDedup = variant.dedup === false;
  if (noDedup && name !== 'kv') throw ErrUnknownGuest(`${name} without dedup`, 'kv');
  const key = noDedup ? `${name}-no-dedup` : name;
  let p = cache.get(key);
  if (!p) {
    let src = guestSource(name);
    if (noDedup) {
      if (!KV_REPLAY_LINE.test(src)) throw new Error('kv.s: the replay branch (beq r9, r5, h_replay) is gone; update getGuest');
      // Falls through to the window check and the execution, as if the seq were new.
      src = src.replace(KV_REPLAY_LINE, '$1nop                         ; BREAK THE RULE: no deduplication, a retry is applied again');
    }
    p = assemble(src, `${key}.s`);
    cache.set(key, p);
  }
  return p;
}
