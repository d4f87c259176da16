/**
 * GuestHarness: a small deterministic host for running a guest without
 * replication — tests, benchmarks and examples. Disk reads complete as soon as
 * the guest waits; the clock and random values come from injected functions
 * and every value read is recorded (so a second run can replay them).
 */
import { Cpu, IRQ, PORT, DISK_BLOCK_SIZE, type DeviceHost, type DiskRequest, type ExitReason, type Program } from '@mr/vmft-cpu';

export interface HarnessOptions {
  /** Clock value for each PORT.CLOCK read (default: 1.7e12 + 10 ms per read). */
  clock?: () => number;
  /** u32 for each PORT.RANDOM read (default: xorshift32 seeded 1). */
  random?: () => number;
  /** Initial disk blocks. */
  disk?: Map<number, Uint8Array>;
  memorySize?: number;
}

export interface RecordedRead {
  icount: number;
  port: number;
  value: number;
}

export class GuestHarness implements DeviceHost {
  readonly cpu: Cpu;
  readonly blocks: Map<number, Uint8Array>;
  /** Every packet the guest transmitted, in order. */
  readonly outbox: Uint8Array[] = [];
  /** Every non-deterministic value the guest read. */
  readonly reads: RecordedRead[] = [];
  diskWrites = 0;
  private pendingRead: DiskRequest | null = null;
  private readonly clock: () => number;
  private readonly random: () => number;

  constructor(program: Program, opts: HarnessOptions = {}) {
    let t = 1_700_000_000_000;
    let x = 1;
    this.clock = opts.clock ?? (() => (t += 10));
    this.random = opts.random ?? (() => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; });
    this.blocks = opts.disk ?? new Map();
    this.cpu = new Cpu(program, this, { memorySize: opts.memorySize });
  }

  read(port: number, icount: number): number {
    const value = port === PORT.CLOCK ? this.clock() : this.random();
    this.reads.push({ icount, port, value });
    return value;
  }

  transmit(packet: Uint8Array): void {
    this.outbox.push(packet);
  }

  disk(req: DiskRequest): void {
    if (req.op === 'read') {
      this.pendingRead = req;
      return;
    }
    this.diskWrites++;
    for (let i = 0; i < req.count; i++) {
      this.blocks.set(req.block + i, req.data!.slice(i * DISK_BLOCK_SIZE, (i + 1) * DISK_BLOCK_SIZE));
    }
  }

  /**
   * Runs until the guest waits with nothing left to do (completing disk reads
   * on the way), halts, faults, or `maxInstructions` pass.
   */
  settle(maxInstructions = 50_000_000): ExitReason {
    const limit = this.cpu.icount + maxInstructions;
    for (;;) {
      const why = this.cpu.run(limit);
      if (why === 'stop') continue;
      if (why === 'wfi' && this.pendingRead) {
        const req = this.pendingRead;
        this.pendingRead = null;
        const data = new Uint8Array(req.count * DISK_BLOCK_SIZE);
        for (let i = 0; i < req.count; i++) {
          const b = this.blocks.get(req.block + i);
          if (b) data.set(b.subarray(0, DISK_BLOCK_SIZE), i * DISK_BLOCK_SIZE);
        }
        this.cpu.completeDiskRead(data);
        continue;
      }
      return why;
    }
  }

  /** Delivers one packet and settles; returns the packets the guest sent in response. */
  send(packet: Uint8Array): Uint8Array[] {
    const before = this.outbox.length;
    this.settle();
    if (!this.cpu.deliverPacket(packet)) throw new Error('the guest has no receive buffer armed');
    const why = this.settle();
    if (why === 'fault') throw new Error(`guest fault: ${this.cpu.faultMessage}`);
    return this.outbox.slice(before);
  }

  /** One timer interrupt, then settle. */
  tick(): ExitReason {
    this.cpu.raiseInterrupt(IRQ.TIMER);
    return this.settle();
  }
}
