/**
 * What the FT core needs from a virtual machine. `Cpu` from @mr/vmft-cpu
 * satisfies it as is (structurally); tests may pass any other machine that
 * keeps the same promises:
 *
 * - run(until) executes until icount === until exactly ('limit'), or the
 *   guest waits ('wfi'), halts, faults, or host.read returned undefined
 *   ('io-wait', the reading instruction not executed).
 * - Events (raiseInterrupt, deliverPacket, completeDiskRead) are only
 *   delivered between runs, at boundary `icount`.
 * - Device callbacks receive the icount of the boundary BEFORE the
 *   instruction that makes the call.
 * - Same start state + same events at the same icounts ⇒ same stateHash().
 */
import { IRQ, PORT, type DeviceHost, type ExitReason } from '@mr/vmft-cpu';

export type { DeviceHost, DiskRequest, ExitReason } from '@mr/vmft-cpu';

export interface Machine {
  readonly icount: number;
  readonly waiting: boolean;
  readonly halted: boolean;
  readonly faulted: boolean;
  readonly faultMessage: string | null;
  /** The timer period the guest programmed (0 = off). */
  readonly timerPeriodMs: number;
  /** A receive buffer is armed: deliverPacket would succeed. */
  readonly nicRxReady: boolean;
  setHost(host: DeviceHost): void;
  run(untilIcount: number): ExitReason;
  raiseInterrupt(line: number): void;
  deliverPacket(packet: Uint8Array): boolean;
  completeDiskRead(data: Uint8Array, ok?: boolean): void;
  snapshot(): Uint8Array;
  stateHash(): string;
}

/** Device numbering of @mr/vmft-cpu (isa.ts): the ports and lines the core interprets. */
export const DEVICES = {
  clockPort: PORT.CLOCK,
  randomPort: PORT.RANDOM,
  timerLine: IRQ.TIMER,
} as const;
