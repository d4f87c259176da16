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
export type ExitReason = 'limit' | 'wfi' | 'halt' | 'fault' | 'stop' | 'io-wait';

export interface DiskRequest {
  readonly op: 'read' | 'write';
  readonly block: number;
  readonly count: number;
  readonly addr: number;
  /** Writes: the bytes written. */
  readonly data?: Uint8Array;
}

export interface DeviceHost {
  read(port: number, icount: number): number | undefined;
  transmit(packet: Uint8Array, icount: number): void;
  disk(req: DiskRequest, icount: number): void;
  write?(port: number, value: number, icount: number): void;
}

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
  clockPort: 0x02,
  randomPort: 0x04,
  timerLine: 0,
} as const;
