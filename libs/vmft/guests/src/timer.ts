/**
 * Packet format of the `timer` guest (little-endian).
 *
 * Request:  u32 tag, u8 op (1 query, 2 set period), 3 bytes padding, [u32 period ms for op 2].
 * Response: u32 tag, u8 status (0 ok, 2 bad request), 3 bytes padding, then for ok:
 *           u32 ticks, u32 checksum, u32 last clock low, u32 last clock high, u32 last random,
 *           u32 timer period ms.
 *
 * On every timer tick the guest reads PORT.CLOCK, PORT.CLOCK_HI and PORT.RANDOM
 * and folds them into the checksum (timerChecksum below computes the same).
 * It starts with a 10 ms period.
 */
import { createError } from '@mr/errors';

export const ErrTimerPacket = createError<[string]>('FT_ERR_TIMER_PACKET', 'bad timer packet: %s', 502);
export const TIMER_DEFAULT_PERIOD_MS = 10;

export type TimerRequest = { tag: number; op: 'query' } | { tag: number; op: 'set-period'; periodMs: number };
export interface TimerResponse {
  tag: number;
  ok: boolean;
  ticks: number;
  checksum: number;
  lastClockMs: number;
  lastRandom: number;
  periodMs: number;
}

export function encodeTimerRequest(r: TimerRequest): Uint8Array {
  const out = new Uint8Array(r.op === 'query' ? 8 : 12);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, r.tag >>> 0, true);
  out[4] = r.op === 'query' ? 1 : 2;
  if (r.op === 'set-period') dv.setUint32(8, r.periodMs >>> 0, true);
  return out;
}

export function decodeTimerResponse(b: Uint8Array): TimerResponse {
  if (b.length < 8) throw ErrTimerPacket(`response of ${b.length} bytes is too short`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = dv.getUint32(0, true);
  if (b[4] !== 0 || b.length < 32) return { tag, ok: false, ticks: 0, checksum: 0, lastClockMs: 0, lastRandom: 0, periodMs: 0 };
  return {
    tag,
    ok: true,
    ticks: dv.getUint32(8, true),
    checksum: dv.getUint32(12, true),
    lastClockMs: dv.getUint32(20, true) * 4294967296 + dv.getUint32(16, true),
    lastRandom: dv.getUint32(24, true),
    periodMs: dv.getUint32(28, true),
  };
}

/** The checksum the guest computes over a sequence of (clock ms, random) samples. */
export function timerChecksum(samples: readonly { clockMs: number; random: number }[]): number {
  let sum = 0;
  for (const s of samples) {
    const lo = s.clockMs % 4294967296 | 0, hi = Math.floor(s.clockMs / 4294967296) | 0;
    sum = Math.imul(sum, 31) + lo | 0;
    sum = (sum ^ s.random) | 0;
    sum = Math.imul(sum, 0x01000193) + hi | 0;
  }
  return sum >>> 0;
}
