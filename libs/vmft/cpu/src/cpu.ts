/**
 * The deterministic virtual CPU. See index.ts for how a host drives it.
 */
import { createError } from '@mr/errors';
import {
  DEFAULT_MEMORY_SIZE, DISK_BLOCK_SIZE, DISK_CMD, DISK_STATUS, NUM_IRQ_LINES, NUM_OPS, NUM_REGS, OP,
  PAGE_SHIFT, PAGE_SIZE, PORT, SP, ZR, IRQ,
} from './isa.ts';
import type { Program } from './program.ts';
import { compileBlock, type Block } from './jit.ts';
import { foldStateHash, HASH_P1, refreshPageHashes, type PageHashes } from './hash.ts';
import { decodeSnapshot, encodeSnapshot, ErrBadSnapshot, loadPages } from './snapshot.ts';
import { applyState, encodeState, readState } from './state.ts';

export { ErrBadSnapshot };

export const ErrBadProgram = createError<[string]>('FT_ERR_BAD_PROGRAM', 'bad program: %s', 400);
export const ErrBadEvent = createError<[string]>('FT_ERR_BAD_EVENT', 'bad event: %s', 400);

/** Why run() returned. */
export type ExitReason =
  /** icount reached the limit given to run(). */
  | 'limit'
  /** The guest executed WFI and no unmasked interrupt is pending: deliver an event, then run again. */
  | 'wfi'
  /** The guest executed HALT. */
  | 'halt'
  /** The guest faulted (cpu.faultMessage says why); the CPU stays faulted. */
  | 'fault'
  /** The host called requestStop() from a device callback. */
  | 'stop'
  /** host.read returned undefined: the IN was not executed; run again when the value is available. */
  | 'io-wait';

export interface DiskRequest {
  readonly op: 'read' | 'write';
  readonly block: number;
  readonly count: number;
  /** Guest address of the buffer (read: where the data will be DMA'd). */
  readonly addr: number;
  /** For writes: a copy of count * 512 bytes from guest memory. */
  readonly data?: Uint8Array;
}

/**
 * The host side of the devices. Every callback is synchronous and runs in the
 * middle of run(); `icount` is the instruction count at the boundary before
 * the instruction that made the call. Callbacks must not deliver events
 * (raiseInterrupt, dmaWrite, deliverPacket, completeDiskRead): those throw
 * while the CPU runs. They may call requestStop().
 */
export interface DeviceHost {
  /**
   * IN from a non-deterministic port: PORT.CLOCK (return ms since epoch, a
   * non-negative integer < 2^53), PORT.RANDOM (a u32), or a host port
   * 0x80..0xff. The primary answers from the real device and records the
   * value; the backup answers from the log. Return undefined when the value is
   * not available yet: run() then returns 'io-wait' before that instruction.
   */
  read(port: number, icount: number): number | undefined;
  /** The guest transmitted a packet (a copy). An output: subject to the output rule. */
  transmit(packet: Uint8Array, icount: number): void;
  /**
   * A disk command. A read completes later: the host calls
   * cpu.completeDiskRead(data) at some boundary (an input event). A write has
   * completed from the guest's point of view; only a live primary really writes.
   */
  disk(req: DiskRequest, icount: number): void;
  /** OUT to PORT.CONSOLE (a byte) or a host port 0x80..0xff. Optional. */
  write?(port: number, value: number, icount: number): void;
}

/** A host that has no devices: reads return 0 and outputs are dropped. */
export const nullHost: DeviceHost = {
  read: () => 0,
  transmit: () => {},
  disk: () => {},
};

export interface CpuOptions {
  /** Bytes of guest memory, a multiple of 4096 (default 1 MiB). */
  memorySize?: number;
  /**
   * 'blocks' (default): hot code runs as compiled blocks (jit.ts), the rest
   * through the interpreter. 'interpreter': the reference interpreter only.
   * Both give the same state at every instruction count.
   */
  engine?: 'blocks' | 'interpreter';
  /** Entries into a pc before its block is compiled (default 16, 1..255; 1 compiles everything at once: for tests). */
  hotEntries?: number;
}

/** Instructions the interpreter runs between two looks at the block table. */
const INTERP_STEP = 32;
/** Compiled blocks run below this instruction count (every count and sum of counts is exact there). */
const BLOCKS_MAX_ICOUNT = 2 ** 52;


/** Ops whose `c` operand is a static code target. */
const STATIC_TARGET = new Set<number>([
  OP.BEQ_R, OP.BEQ_I, OP.BNE_R, OP.BNE_I, OP.BLT_R, OP.BLT_I, OP.BGE_R, OP.BGE_I, OP.BGT_R, OP.BGT_I,
  OP.BLE_R, OP.BLE_I, OP.BLTU_R, OP.BLTU_I, OP.BGEU_R, OP.BGEU_I, OP.JMP, OP.CALL,
]);

export class Cpu {
  readonly program: Program;
  readonly memorySize: number;
  readonly numPages: number;
  /** Registers r0..r15 plus the read-only zero register at index 16. Read-only for hosts. */
  readonly regs = new Int32Array(NUM_REGS + 1);
  /** Guest memory. Read-only for hosts: write through dmaWrite(). */
  readonly mem8: Uint8Array;
  private readonly mem16: Uint16Array;
  private readonly mem32: Int32Array;
  /** Per page: bit 0 = hash stale, bit 1 = written since takeDirtyPages(). */
  private readonly dirty: Uint8Array;
  private readonly pageHash: PageHashes;
  private readonly code: Int32Array;
  private readonly ninstr: number;
  private host: DeviceHost;
  /** Per instruction: its compiled block, null (not compilable), or undefined (not hot yet). Only with engine 'blocks'. */
  private readonly blocks: (Block | null | undefined)[] | undefined;
  private readonly heat: Uint8Array | undefined;
  private readonly hotEntries: number;
  /** A compiled block's out-parameter: instructions it executed. */
  private readonly blockIo = new Int32Array(1);

  pc = 0;
  /** Instructions completed since the program started. */
  icount = 0;
  /** Interrupts enabled (EI/DI; cleared on entry to a handler, restored by IRET). */
  ie = false;
  halted = false;
  waiting = false;
  faultMessage: string | null = null;
  private running = false;
  private stopRequested = false;
  // Interrupt controller.
  irqPending = 0;
  irqMask = 0xff;
  readonly ivec = new Int32Array(NUM_IRQ_LINES).fill(-1);
  // Devices.
  timerPeriodMs = 0;
  nicRxAddr = 0;
  nicRxCap = 0;
  nicRxLen = 0;
  nicTxAddr = 0;
  diskAddr = 0;
  diskBlock = 0;
  diskCount = 1;
  diskStatus: number = DISK_STATUS.IDLE;
  /** The read request in flight (address, bytes) while diskStatus is BUSY. */
  diskReadAddr = 0;
  diskReadLen = 0;
  clockHi = 0;

  constructor(program: Program, host: DeviceHost = nullHost, opts: CpuOptions = {}) {
    const size = opts.memorySize ?? DEFAULT_MEMORY_SIZE;
    if (!Number.isInteger(size) || size <= 0 || size % PAGE_SIZE !== 0 || size > 1 << 30) {
      throw ErrBadProgram(`memorySize must be a positive multiple of ${PAGE_SIZE}, got ${size}`);
    }
    validateProgram(program, size);
    this.program = program;
    this.host = host;
    this.memorySize = size;
    this.numPages = size >>> PAGE_SHIFT;
    const buf = new ArrayBuffer(size);
    this.mem8 = new Uint8Array(buf);
    this.mem16 = new Uint16Array(buf);
    this.mem32 = new Int32Array(buf);
    this.dirty = new Uint8Array(this.numPages).fill(1);
    this.pageHash = { mem32: this.mem32, dirty: this.dirty, h1: new Uint32Array(this.numPages), h2: new Uint32Array(this.numPages) };
    this.ninstr = program.code.length >>> 2;
    // Sentinel FAULT instruction after the last one: running off the end faults.
    this.code = new Int32Array(program.code.length + 4);
    this.code.set(program.code);
    this.hotEntries = opts.hotEntries ?? 16;
    if (!Number.isInteger(this.hotEntries) || this.hotEntries < 1 || this.hotEntries > 255) throw ErrBadProgram(`hotEntries must be 1..255, got ${opts.hotEntries}`);
    if ((opts.engine ?? 'blocks') === 'blocks') {
      this.blocks = new Array<Block | null | undefined>(this.ninstr + 1);
      this.heat = new Uint8Array(this.ninstr + 1);
    }
    this.reset();
  }

  /** Back to the power-on state: memory = program image, pc = entry, icount = 0. */
  reset(): void {
    this.assertIdle('reset');
    this.mem8.fill(0);
    this.mem8.set(this.program.data, this.program.dataBase);
    this.dirty.fill(3);
    this.regs.fill(0);
    this.regs[SP] = this.memorySize;
    this.pc = this.program.entry;
    this.icount = 0;
    this.ie = false;
    this.halted = false;
    this.waiting = false;
    this.faultMessage = null;
    this.stopRequested = false;
    this.irqPending = 0;
    this.irqMask = 0xff;
    this.ivec.fill(-1);
    this.timerPeriodMs = 0;
    this.nicRxAddr = this.nicRxCap = this.nicRxLen = this.nicTxAddr = 0;
    this.diskAddr = this.diskBlock = 0;
    this.diskCount = 1;
    this.diskStatus = DISK_STATUS.IDLE;
    this.diskReadAddr = this.diskReadLen = 0;
    this.clockHi = 0;
  }

  /** Replaces the device host (e.g. a backup going live swaps log replay for real devices). */
  setHost(host: DeviceHost): void {
    this.host = host;
  }

  get faulted(): boolean {
    return this.faultMessage !== null;
  }

  /** True when the NIC has a receive buffer armed (deliverPacket would succeed). */
  get nicRxReady(): boolean {
    return this.nicRxCap > 0;
  }

  /** Asks run() to return 'stop' after the current instruction (call from a device callback). */
  requestStop(): void {
    this.stopRequested = true;
  }

  // ---------------------------------------------------------------- events

  /** Marks interrupt line `line` pending. Taken at the next run() if enabled and unmasked. */
  raiseInterrupt(line: number): void {
    this.assertIdle('raiseInterrupt');
    if (!Number.isInteger(line) || line < 0 || line >= NUM_IRQ_LINES) throw ErrBadEvent(`no interrupt line ${line}`);
    this.irqPending |= 1 << line;
  }

  /** Writes bytes into guest memory (DMA). */
  dmaWrite(addr: number, bytes: Uint8Array): void {
    this.assertIdle('dmaWrite');
    if (!Number.isInteger(addr) || addr < 0 || addr + bytes.length > this.memorySize) {
      throw ErrBadEvent(`DMA of ${bytes.length} bytes at ${addr} is outside memory`);
    }
    this.mem8.set(bytes, addr);
    this.markDirty(addr, bytes.length);
  }

  /**
   * NIC receive: DMAs the packet into the armed receive buffer (truncated to
   * its capacity and the end of memory), sets NIC_RX_LEN, disarms the buffer and raises IRQ.NIC.
   * Returns false (and changes nothing) when no buffer is armed: keep the
   * packet and try again at a later boundary.
   */
  deliverPacket(packet: Uint8Array): boolean {
    this.assertIdle('deliverPacket');
    if (this.nicRxCap <= 0) return false;
    // Truncated to the buffer's capacity and to the end of memory (a guest bug, but still deterministic).
    const n = Math.max(0, Math.min(packet.length, this.nicRxCap, this.memorySize - this.nicRxAddr));
    if (n > 0) {
      this.mem8.set(packet.subarray(0, n), this.nicRxAddr);
      this.markDirty(this.nicRxAddr, n);
    }
    this.nicRxLen = n;
    this.nicRxCap = 0;
    this.irqPending |= 1 << IRQ.NIC;
    return true;
  }

  /**
   * Completes the disk read in flight: DMAs `data` (count * 512 bytes; shorter
   * is zero-padded) to the request's address, sets DISK_STATUS to DONE (or
   * ERROR when `ok` is false) and raises IRQ.DISK.
   */
  completeDiskRead(data: Uint8Array, ok = true): void {
    this.assertIdle('completeDiskRead');
    if (this.diskStatus !== DISK_STATUS.BUSY) throw ErrBadEvent('no disk read in flight');
    if (ok) {
      const n = this.diskReadLen;
      const buf = new Uint8Array(n);
      buf.set(data.subarray(0, n));
      this.mem8.set(buf, this.diskReadAddr);
      this.markDirty(this.diskReadAddr, n);
    }
    this.diskStatus = ok ? DISK_STATUS.DONE : DISK_STATUS.ERROR;
    this.irqPending |= 1 << IRQ.DISK;
  }

  /** A copy of guest memory [addr, addr+len). */
  readMemory(addr: number, len: number): Uint8Array {
    if (addr < 0 || len < 0 || addr + len > this.memorySize) throw ErrBadEvent(`read of ${len} bytes at ${addr} is outside memory`);
    return this.mem8.slice(addr, addr + len);
  }

  readWord(addr: number): number {
    if ((addr & 3) !== 0 || addr < 0 || addr + 4 > this.memorySize) throw ErrBadEvent(`bad word address ${addr}`);
    return this.mem32[addr >>> 2]!;
  }

  // ------------------------------------------------------------------ run

  /**
   * Executes instructions until icount reaches `untilIcount` or the guest
   * halts, waits for an interrupt, faults, or a callback asks to stop. Pending
   * interrupts are taken on entry (if enabled) and after EI, IRET and OUTs to
   * the interrupt controller.
   */
  run(untilIcount: number): ExitReason {
    if (this.running) throw ErrBadEvent('run() called from a device callback');
    if (this.faultMessage !== null) return 'fault';
    if (this.halted) return 'halt';
    if (this.waiting && (this.irqPending & this.irqMask) === 0) return 'wfi';
    // Nothing changes unless an instruction will run: how often a host calls
    // run() at one boundary must not matter (events delivered at the same
    // icount are all pending before the first interrupt is taken).
    if (this.icount >= untilIcount) return 'limit';
    this.waiting = false;
    if (!this.takeInterrupt()) return 'fault';
    this.running = true;
    this.stopRequested = false;
    try {
      for (;;) {
        // Counts near 2^53 (a restored snapshot may claim any) are not exact in a double: the reference path runs them.
        const why = this.blocks && untilIcount < BLOCKS_MAX_ICOUNT ? this.loopBlocks(untilIcount) : this.loop(untilIcount);
        if (why !== 'limit' || this.icount >= untilIcount) return why;
      }
    } finally {
      this.running = false;
    }
  }

  /** If interrupts are enabled and an unmasked one is pending, enters its handler. False on fault. */
  private takeInterrupt(): boolean {
    const p = this.irqPending & this.irqMask;
    if (!this.ie || p === 0) return true;
    const line = 31 - Math.clz32(p & -p);
    this.irqPending &= ~(1 << line);
    const target = this.ivec[line]!;
    if (target < 0 || target >= this.ninstr) return this.setFault(`interrupt ${line} has no valid vector (${target})`, this.pc);
    const sp = (this.regs[SP]! - 8) | 0;
    if ((sp & 3) !== 0 || sp < 0 || sp > this.memorySize - 8) return this.setFault(`stack overflow entering interrupt ${line} (sp=${this.regs[SP]})`, this.pc);
    this.mem32[(sp >>> 2) + 1] = this.pc;
    this.mem32[sp >>> 2] = 1; // saved flags: IE was set
    this.dirty[sp >>> PAGE_SHIFT] = 3;
    this.dirty[(sp + 4) >>> PAGE_SHIFT] = 3;
    this.regs[SP] = sp;
    this.ie = false;
    this.waiting = false;
    this.pc = target;
    return true;
  }

  private setFault(msg: string, pc: number): false {
    const line = pc >= 0 && pc < this.ninstr ? this.program.lines[pc] : undefined;
    this.faultMessage = `${msg} at pc=${pc}${line !== undefined && line > 0 ? ` (${this.program.name}:${line})` : ''} icount=${this.icount}`;
    this.pc = pc;
    return false;
  }

  private loop(limit: number): ExitReason {
    const code = this.code;
    const R = this.regs;
    const M8 = this.mem8;
    const M16 = this.mem16;
    const M32 = this.mem32;
    const D = this.dirty;
    const n = this.ninstr;
    const max4 = this.memorySize - 4;
    const max2 = this.memorySize - 2;
    const max1 = this.memorySize - 1;
    let pc = this.pc;
    // Count instructions in a small integer (this slice) rather than the absolute double icount.
    const base = this.icount;
    const budget = Math.min(limit - base, 0x3fffffff) | 0;
    let ic = 0;
    let pc0 = pc;
    let msg = '';
    fault: {
      while (ic < budget) {
        pc0 = pc;
        const o = pc << 2;
        const w = code[o]!;
        const a = code[o + 1]!;
        const b = code[o + 2]!;
        const c = code[o + 3]!;
        pc++;
        ic++;
        switch (w & 0xff) {
          case 3: /* MOV_R */ R[a] = R[b]!; break;
          case 4: /* MOV_I */ R[a] = c; break;
          case 5: /* ADD_R */ R[a] = (R[b]! + R[c]!) | 0; break;
          case 6: /* ADD_I */ R[a] = (R[b]! + c) | 0; break;
          case 7: /* SUB_R */ R[a] = (R[b]! - R[c]!) | 0; break;
          case 8: /* SUB_I */ R[a] = (R[b]! - c) | 0; break;
          case 9: /* MUL_R */ R[a] = Math.imul(R[b]!, R[c]!); break;
          case 10: /* MUL_I */ R[a] = Math.imul(R[b]!, c); break;
          case 19: /* AND_R */ R[a] = R[b]! & R[c]!; break;
          case 20: /* AND_I */ R[a] = R[b]! & c; break;
          case 21: /* OR_R */ R[a] = R[b]! | R[c]!; break;
          case 22: /* OR_I */ R[a] = R[b]! | c; break;
          case 23: /* XOR_R */ R[a] = R[b]! ^ R[c]!; break;
          case 24: /* XOR_I */ R[a] = R[b]! ^ c; break;
          case 25: /* SHL_R */ R[a] = R[b]! << R[c]!; break;
          case 26: /* SHL_I */ R[a] = R[b]! << c; break;
          case 27: /* SHR_R */ R[a] = R[b]! >>> R[c]!; break;
          case 28: /* SHR_I */ R[a] = R[b]! >>> c; break;
          case 29: /* SAR_R */ R[a] = R[b]! >> R[c]!; break;
          case 30: /* SAR_I */ R[a] = R[b]! >> c; break;
          case 31: /* SLT_R */ R[a] = R[b]! < R[c]! ? 1 : 0; break;
          case 32: /* SLT_I */ R[a] = R[b]! < c ? 1 : 0; break;
          case 33: /* SLTU_R */ R[a] = R[b]! >>> 0 < R[c]! >>> 0 ? 1 : 0; break;
          case 34: /* SLTU_I */ R[a] = R[b]! >>> 0 < c >>> 0 ? 1 : 0; break;
          case 11: /* DIV_R */ case 12: /* DIV_I */ case 13: /* DIVU_R */ case 14: /* DIVU_I */
          case 15: /* REM_R */ case 16: /* REM_I */ case 17: /* REMU_R */ case 18: /* REMU_I */ {
            const op = w & 0xff;
            const x = R[b]!;
            const y = (op & 1) === 0 ? c : R[c]!; // _I forms are even
            if (y === 0) { msg = 'division by zero'; break fault; }
            if (op === OP.DIV_R || op === OP.DIV_I) R[a] = (x / y) | 0;
            else if (op === OP.DIVU_R || op === OP.DIVU_I) R[a] = ((x >>> 0) / (y >>> 0)) >>> 0;
            else if (op === OP.REM_R || op === OP.REM_I) R[a] = x % y;
            else R[a] = (x >>> 0) % (y >>> 0);
            break;
          }
          case 35: /* NOT */ R[a] = ~R[b]!; break;
          case 36: /* NEG */ R[a] = -R[b]! | 0; break;
          case 37: /* LDW */ {
            const ad = (R[b]! + c) | 0;
            if ((ad & 3) !== 0 || ad >>> 0 > max4) { msg = `bad word load address ${ad >>> 0}`; break fault; }
            R[a] = M32[ad >>> 2]!;
            break;
          }
          case 39: /* STW */ {
            const ad = (R[b]! + c) | 0;
            if ((ad & 3) !== 0 || ad >>> 0 > max4) { msg = `bad word store address ${ad >>> 0}`; break fault; }
            M32[ad >>> 2] = R[a]!;
            D[ad >>> PAGE_SHIFT] = 3;
            break;
          }
          case 38: /* LDB */ {
            const ad = (R[b]! + c) | 0;
            if (ad >>> 0 > max1) { msg = `bad byte load address ${ad >>> 0}`; break fault; }
            R[a] = M8[ad]!;
            break;
          }
          case 40: /* STB */ {
            const ad = (R[b]! + c) | 0;
            if (ad >>> 0 > max1) { msg = `bad byte store address ${ad >>> 0}`; break fault; }
            M8[ad] = R[a]!;
            D[ad >>> PAGE_SHIFT] = 3;
            break;
          }
          case 75: /* LDH */ {
            const ad = (R[b]! + c) | 0;
            if ((ad & 1) !== 0 || ad >>> 0 > max2) { msg = `bad halfword load address ${ad >>> 0}`; break fault; }
            R[a] = M16[ad >>> 1]!;
            break;
          }
          case 76: /* STH */ {
            const ad = (R[b]! + c) | 0;
            if ((ad & 1) !== 0 || ad >>> 0 > max2) { msg = `bad halfword store address ${ad >>> 0}`; break fault; }
            M16[ad >>> 1] = R[a]!;
            D[ad >>> PAGE_SHIFT] = 3;
            break;
          }
          case 41: /* BEQ_R */ if (R[a] === R[b]) pc = c; break;
          case 42: /* BEQ_I */ if (R[a] === b) pc = c; break;
          case 43: /* BNE_R */ if (R[a] !== R[b]) pc = c; break;
          case 44: /* BNE_I */ if (R[a] !== b) pc = c; break;
          case 45: /* BLT_R */ if (R[a]! < R[b]!) pc = c; break;
          case 46: /* BLT_I */ if (R[a]! < b) pc = c; break;
          case 47: /* BGE_R */ if (R[a]! >= R[b]!) pc = c; break;
          case 48: /* BGE_I */ if (R[a]! >= b) pc = c; break;
          case 49: /* BGT_R */ if (R[a]! > R[b]!) pc = c; break;
          case 50: /* BGT_I */ if (R[a]! > b) pc = c; break;
          case 51: /* BLE_R */ if (R[a]! <= R[b]!) pc = c; break;
          case 52: /* BLE_I */ if (R[a]! <= b) pc = c; break;
          case 53: /* BLTU_R */ if (R[a]! >>> 0 < R[b]! >>> 0) pc = c; break;
          case 54: /* BLTU_I */ if (R[a]! >>> 0 < b >>> 0) pc = c; break;
          case 55: /* BGEU_R */ if (R[a]! >>> 0 >= R[b]! >>> 0) pc = c; break;
          case 56: /* BGEU_I */ if (R[a]! >>> 0 >= b >>> 0) pc = c; break;
          case 57: /* JMP */ pc = c; break;
          case 58: /* JR */ {
            const t = R[a]!;
            if (t >>> 0 >= n) { msg = `jump to bad address ${t}`; break fault; }
            pc = t;
            break;
          }
          case 59: /* CALL */ case 60: /* CALLR */ {
            const t = (w & 0xff) === OP.CALL ? c : R[a]!;
            if (t >>> 0 >= n) { msg = `call to bad address ${t}`; break fault; }
            const sp = (R[SP]! - 4) | 0;
            if ((sp & 3) !== 0 || sp >>> 0 > max4) { msg = `stack overflow (sp=${R[SP]})`; break fault; }
            M32[sp >>> 2] = pc;
            D[sp >>> PAGE_SHIFT] = 3;
            R[SP] = sp;
            pc = t;
            break;
          }
          case 61: /* RET */ {
            const sp = R[SP]!;
            if ((sp & 3) !== 0 || sp >>> 0 > max4) { msg = `stack underflow (sp=${sp})`; break fault; }
            const t = M32[sp >>> 2]!;
            if (t >>> 0 >= n) { msg = `return to bad address ${t}`; break fault; }
            R[SP] = (sp + 4) | 0;
            pc = t;
            break;
          }
          case 62: /* PUSH */ {
            const sp = (R[SP]! - 4) | 0;
            if ((sp & 3) !== 0 || sp >>> 0 > max4) { msg = `stack overflow (sp=${R[SP]})`; break fault; }
            M32[sp >>> 2] = R[a]!;
            D[sp >>> PAGE_SHIFT] = 3;
            R[SP] = sp;
            break;
          }
          case 63: /* POP */ {
            const sp = R[SP]!;
            if ((sp & 3) !== 0 || sp >>> 0 > max4) { msg = `stack underflow (sp=${sp})`; break fault; }
            R[a] = M32[sp >>> 2]!;
            R[SP] = (sp + 4) | 0;
            break;
          }
          case 1: /* NOP */ break;
          case 2: /* HALT */
            this.pc = pc; this.icount = base + ic; this.halted = true;
            return 'halt';
          case 67: /* WFI */
            if ((this.irqPending & this.irqMask) === 0) {
              this.pc = pc; this.icount = base + ic; this.waiting = true;
              return 'wfi';
            }
            if (this.ie) {
              this.pc = pc; this.icount = base + ic;
              if (!this.takeInterrupt()) return 'fault';
              pc = this.pc;
            }
            break;
          case 65: /* DI */ this.ie = false; break;
          case 64: /* EI */ case 66: /* IRET */ {
            if ((w & 0xff) === OP.IRET) {
              const sp = R[SP]!;
              if ((sp & 3) !== 0 || sp >>> 0 > max4 - 4) { msg = `stack underflow in iret (sp=${sp})`; break fault; }
              const t = M32[(sp >>> 2) + 1]!;
              if (t >>> 0 >= n) { msg = `iret to bad address ${t}`; break fault; }
              this.ie = (M32[sp >>> 2]! & 1) !== 0;
              R[SP] = (sp + 8) | 0;
              pc = t;
            } else {
              this.ie = true;
            }
            this.pc = pc; this.icount = base + ic;
            if (!this.takeInterrupt()) return 'fault';
            pc = this.pc;
            break;
          }
          case 68: /* IN */ {
            this.pc = pc0; this.icount = base + ic - 1;
            const v = this.portIn(c);
            if (v === undefined) {
              if (this.faultMessage !== null) return 'fault';
              return 'io-wait';
            }
            R[a] = v;
            this.pc = pc; this.icount = base + ic;
            if (this.stopRequested) return 'stop';
            break;
          }
          case 69: /* OUT_R */ case 70: /* OUT_I */ {
            this.pc = pc0; this.icount = base + ic - 1;
            const ok = this.portOut(c, (w & 0xff) === OP.OUT_R ? R[a]! : b);
            if (!ok) return 'fault';
            this.pc = pc; this.icount = base + ic;
            if (!this.takeInterrupt()) return 'fault';
            pc = this.pc;
            if (this.stopRequested) return 'stop';
            break;
          }
          case 71: /* MEMCPY */ {
            const dst = R[a]! >>> 0, src = R[b]! >>> 0, len = R[c]! >>> 0;
            if (dst + len > this.memorySize || src + len > this.memorySize) { msg = `memcpy of ${len} bytes from ${src} to ${dst} is outside memory`; break fault; }
            M8.copyWithin(dst, src, src + len);
            this.markDirty(dst, len);
            break;
          }
          case 72: /* MEMSET */ {
            const dst = R[a]! >>> 0, len = R[c]! >>> 0;
            if (dst + len > this.memorySize) { msg = `memset of ${len} bytes at ${dst} is outside memory`; break fault; }
            M8.fill(R[b]! & 0xff, dst, dst + len);
            this.markDirty(dst, len);
            break;
          }
          case 73: /* MEMCMP */ {
            const x = R[a]! >>> 0, y = R[b]! >>> 0, len = R[c]! >>> 0;
            if (x + len > this.memorySize || y + len > this.memorySize) { msg = `memcmp of ${len} bytes at ${x}, ${y} is outside memory`; break fault; }
            let r = 0;
            for (let i = 0; i < len; i++) {
              const d = M8[x + i]! - M8[y + i]!;
              if (d !== 0) { r = d < 0 ? -1 : 1; break; }
            }
            R[(w >> 8) & 0xf] = r;
            break;
          }
          case 74: /* HASH */ {
            const x = R[b]! >>> 0, len = R[c]! >>> 0;
            if (x + len > this.memorySize) { msg = `hash of ${len} bytes at ${x} is outside memory`; break fault; }
            let h = 0x811c9dc5;
            for (let i = x; i < x + len; i++) h = Math.imul(h ^ M8[i]!, HASH_P1);
            R[a] = h;
            break;
          }
          default:
            msg = (w & 0xff) === OP.FAULT && pc0 === n ? 'execution ran off the end of the program' : `illegal instruction ${w & 0xff}`;
            break fault;
        }
      }
      this.pc = pc;
      this.icount = base + ic;
      return 'limit';
    }
    // A faulting instruction does not complete: pc and icount stay before it.
    this.icount = base + ic - 1;
    this.setFault(msg, pc0);
    return 'fault';
  }

  /**
   * The 'blocks' engine: runs compiled blocks, chained, while one starts at
   * pc and fits in what is left of the slice; otherwise the interpreter runs
   * up to INTERP_STEP instructions. A block that would fault stops before the
   * faulting instruction, which the interpreter then runs (and faults on).
   */
  private loopBlocks(limit: number): ExitReason {
    const R = this.regs, M8 = this.mem8, M16 = this.mem16, M32 = this.mem32, D = this.dirty;
    const blocks = this.blocks!, heat = this.heat!, io = this.blockIo, hot = this.hotEntries;
    for (;;) {
      let pc = this.pc;
      let ic = this.icount;
      for (;;) {
        let blk = blocks[pc];
        if (blk === undefined) {
          if (++heat[pc]! < hot) break;
          blk = blocks[pc] = compileBlock(this.code, this.ninstr, pc, this.memorySize) ?? null;
        }
        const left = limit - ic;
        if (blk === null || left < blk.len) break;
        const r = blk.fn(R, M8, M16, M32, D, left > 0x3fffffff ? 0x3fffffff : left, io);
        ic += io[0]!;
        if (r >= 0) {
          pc = r;
          continue;
        }
        pc = -r - 1;
        break;
      }
      this.pc = pc;
      this.icount = ic;
      if (ic >= limit) return 'limit';
      const why = this.loop(Math.min(limit, ic + INTERP_STEP));
      if (why !== 'limit' || this.icount >= limit) return why;
    }
  }

  private markDirty(addr: number, len: number): void {
    if (len <= 0) return;
    const last = (addr + len - 1) >>> PAGE_SHIFT;
    for (let p = addr >>> PAGE_SHIFT; p <= last; p++) this.dirty[p] = 3;
  }

  /** IN: internal device registers answer here; non-deterministic ports go to the host. */
  private portIn(port: number): number | undefined {
    if (port >= PORT.IVEC && port < PORT.IVEC + NUM_IRQ_LINES) return this.ivec[port - PORT.IVEC]!;
    switch (port) {
      case PORT.CLOCK: {
        const v = this.host.read(port, this.icount);
        if (v === undefined) return undefined;
        if (!Number.isSafeInteger(v) || v < 0) { this.setFault(`host clock value ${v} is not a non-negative integer`, this.pc); return undefined; }
        this.clockHi = Math.floor(v / 4294967296) | 0;
        return v | 0;
      }
      case PORT.CLOCK_HI: return this.clockHi;
      case PORT.RANDOM: {
        const v = this.host.read(port, this.icount);
        return v === undefined ? undefined : v | 0;
      }
      case PORT.IRQ_PENDING: return this.irqPending;
      case PORT.IRQ_MASK: return this.irqMask;
      case PORT.TIMER_PERIOD: return this.timerPeriodMs;
      case PORT.NIC_RX_CAP: return this.nicRxCap;
      case PORT.NIC_RX_LEN: return this.nicRxLen;
      case PORT.NIC_RX_ADDR: return this.nicRxAddr;
      case PORT.NIC_TX_ADDR: return this.nicTxAddr;
      case PORT.DISK_STATUS: return this.diskStatus;
      default:
        if (port >= PORT.HOST_BASE && port <= 0xff) {
          const v = this.host.read(port, this.icount);
          return v === undefined ? undefined : v | 0;
        }
        return 0;
    }
  }

  /** OUT. False when it faulted. */
  private portOut(port: number, value: number): boolean {
    if (port >= PORT.IVEC && port < PORT.IVEC + NUM_IRQ_LINES) {
      this.ivec[port - PORT.IVEC] = value;
      return true;
    }
    switch (port) {
      case PORT.CONSOLE: this.host.write?.(port, value & 0xff, this.icount); return true;
      case PORT.IRQ_PENDING: this.irqPending &= ~value; return true;
      case PORT.IRQ_MASK: this.irqMask = value & 0xff; return true;
      case PORT.TIMER_PERIOD: this.timerPeriodMs = Math.max(0, value); this.host.write?.(port, this.timerPeriodMs, this.icount); return true;
      case PORT.NIC_RX_ADDR: this.nicRxAddr = value >>> 0; return true;
      case PORT.NIC_RX_CAP: this.nicRxCap = Math.max(0, value); return true;
      case PORT.NIC_TX_ADDR: this.nicTxAddr = value >>> 0; return true;
      case PORT.NIC_TX_LEN: {
        const len = value >>> 0;
        if (this.nicTxAddr + len > this.memorySize) return this.setFault(`transmit of ${len} bytes at ${this.nicTxAddr} is outside memory`, this.pc);
        this.host.transmit(this.mem8.slice(this.nicTxAddr, this.nicTxAddr + len), this.icount);
        return true;
      }
      case PORT.DISK_ADDR: this.diskAddr = value >>> 0; return true;
      case PORT.DISK_BLOCK: this.diskBlock = value >>> 0; return true;
      case PORT.DISK_COUNT: this.diskCount = value >>> 0; return true;
      case PORT.DISK_CMD: {
        const len = this.diskCount * DISK_BLOCK_SIZE;
        if (this.diskCount === 0 || this.diskAddr + len > this.memorySize || (value !== DISK_CMD.READ && value !== DISK_CMD.WRITE) || this.diskStatus === DISK_STATUS.BUSY) {
          this.diskStatus = DISK_STATUS.ERROR;
          return true;
        }
        if (value === DISK_CMD.READ) {
          this.diskStatus = DISK_STATUS.BUSY;
          this.diskReadAddr = this.diskAddr;
          this.diskReadLen = len;
          this.host.disk({ op: 'read', block: this.diskBlock, count: this.diskCount, addr: this.diskAddr }, this.icount);
        } else {
          this.diskStatus = DISK_STATUS.DONE;
          this.host.disk({ op: 'write', block: this.diskBlock, count: this.diskCount, addr: this.diskAddr, data: this.mem8.slice(this.diskAddr, this.diskAddr + len) }, this.icount);
        }
        return true;
      }
      default:
        if (port >= PORT.HOST_BASE && port <= 0xff) this.host.write?.(port, value, this.icount);
        return true;
    }
  }

  private assertIdle(what: string): void {
    if (this.running) throw ErrBadEvent(`${what}() called while the CPU runs (deliver events between run() calls)`);
  }

  // ------------------------------------------------------- hash, snapshot

  /** Per-page hashes (two 32-bit lanes per page), for finding where two replicas differ. */
  pageHashes(): Uint32Array {
    refreshPageHashes(this.pageHash);
    const out = new Uint32Array(this.numPages * 2);
    for (let p = 0; p < this.numPages; p++) {
      out[2 * p] = this.pageHash.h1[p]!;
      out[2 * p + 1] = this.pageHash.h2[p]!;
    }
    return out;
  }

  /**
   * A 64-bit hash (16 hex digits) of the whole machine state: registers, pc,
   * icount, interrupt and device state, and memory. Only pages written since
   * the last call are rehashed.
   */
  stateHash(): string {
    refreshPageHashes(this.pageHash);
    return foldStateHash(encodeState(this), this.pageHash, this.program.id);
  }

  /** The full machine state as bytes (snapshot.ts has the format). */
  snapshot(): Uint8Array {
    this.assertIdle('snapshot');
    return encodeSnapshot({
      memorySize: this.memorySize, programId: this.program.id, words: encodeState(this),
      faultMessage: this.faultMessage ?? '', mem8: this.mem8,
    });
  }

  /** Replaces the whole state with a snapshot taken from a CPU running the same program. Nothing changes if it is refused. */
  restore(snap: Uint8Array): void {
    this.assertIdle('restore');
    const d = decodeSnapshot(snap, { memorySize: this.memorySize, programId: this.program.id });
    const v = readState(d.words);
    if (v.pc < 0 || v.pc > this.ninstr) throw ErrBadSnapshot(`pc ${v.pc} is outside the program`);
    // Beyond 2^53 a double cannot count one instruction at a time: run(until) could not stop exactly.
    if (!Number.isSafeInteger(v.icount) || v.icount < 0) throw ErrBadSnapshot(`icount ${v.icount} is not a count the CPU can keep exactly`);
    if (v.diskReadAddr + v.diskReadLen > this.memorySize) throw ErrBadSnapshot('disk read buffer outside memory');
    loadPages(snap, d, this.mem8);
    this.dirty.fill(3);
    applyState(this, d.words);
    this.regs[ZR] = 0;
    this.faultMessage = v.faulted ? d.faultMessage : null;
    this.stopRequested = false;
  }

  /** Pages written since the last call (for incremental state transfer); clears the marks. */
  takeDirtyPages(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.numPages; p++) {
      if (this.dirty[p]! & 2) {
        out.push(p);
        this.dirty[p] = this.dirty[p]! & ~2;
      }
    }
    return out;
  }
}

function validateProgram(p: Program, memorySize: number): void {
  const code = p.code;
  if (!(code instanceof Int32Array) || code.length % 4 !== 0) throw ErrBadProgram('code must be an Int32Array of 4 slots per instruction');
  const n = code.length >>> 2;
  if (n === 0) throw ErrBadProgram('no instructions');
  if (!Number.isInteger(p.entry) || p.entry < 0 || p.entry >= n) throw ErrBadProgram(`entry ${p.entry} is not an instruction`);
  if (p.dataBase < 0 || p.dataBase + p.data.length > memorySize) throw ErrBadProgram(`data (${p.data.length} bytes at ${p.dataBase}) does not fit in ${memorySize} bytes of memory`);
  for (let i = 0; i < n; i++) {
    const w = code[4 * i]!, a = code[4 * i + 1]!, b = code[4 * i + 2]!, c = code[4 * i + 3]!;
    const op = w & 0xff;
    if (op === OP.FAULT || op >= NUM_OPS) throw ErrBadProgram(`instruction ${i}: illegal opcode ${op}`);
    if (a < 0 || a > ZR || b < 0 && !isImmB(op) || (b > ZR && !isImmB(op))) throw ErrBadProgram(`instruction ${i}: bad register operand`);
    if (STATIC_TARGET.has(op) && (c < 0 || c >= n)) throw ErrBadProgram(`instruction ${i}: target ${c} is not an instruction`);
    if (isRegC(op) && (c < 0 || c > ZR)) throw ErrBadProgram(`instruction ${i}: bad register operand`);
    if (writesA(op) && a >= ZR) throw ErrBadProgram(`instruction ${i}: cannot write the zero register`);
  }
}

function isImmB(op: number): boolean {
  return op === OP.BEQ_I || op === OP.BNE_I || op === OP.BLT_I || op === OP.BGE_I || op === OP.BGT_I || op === OP.BLE_I
    || op === OP.BLTU_I || op === OP.BGEU_I || op === OP.OUT_I || op === OP.MOV_I || op === OP.JMP || op === OP.CALL
    || op === OP.IN || op === OP.NOP || op === OP.HALT || op === OP.EI || op === OP.DI || op === OP.IRET || op === OP.WFI || op === OP.RET;
}

function isRegC(op: number): boolean {
  return (op >= OP.ADD_R && op <= OP.SLTU_I && (op & 1) === 1) || op === OP.MEMCPY || op === OP.MEMSET || op === OP.MEMCMP || op === OP.HASH;
}

function writesA(op: number): boolean {
  return (op >= OP.MOV_R && op <= OP.LDB) || op === OP.LDH || op === OP.POP || op === OP.IN || op === OP.HASH;
}
