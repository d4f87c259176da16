/**
 * The instruction set: opcode numbers, device ports, interrupt lines and
 * machine constants. A program is pre-decoded into an Int32Array with four
 * slots per instruction: [op | (d << 8), a, b, c]. Register operands are
 * indices 0..15; index 16 (ZR) is a read-only zero register used for absolute
 * addressing (`ldw r1, [label]`).
 */

export const NUM_REGS = 16;
/** Read-only zero register index (not nameable in assembly). */
export const ZR = 16;
/** Stack pointer register (r15). */
export const SP = 15;
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
export const DEFAULT_MEMORY_SIZE = 1 << 20;
export const DISK_BLOCK_SIZE = 512;
export const NUM_IRQ_LINES = 8;

/** Interrupt lines (lower number = higher priority). */
export const IRQ = {
  TIMER: 0,
  NIC: 1,
  DISK: 2,
} as const;

/** Device ports for IN/OUT. */
export const PORT = {
  /** out: one byte to the host's debug console (host.write). */
  CONSOLE: 0x00,
  /** in: host clock, ms since epoch (non-deterministic, host.read); returns the low 32 bits and latches the high bits. */
  CLOCK: 0x02,
  /** in: high bits of the clock value latched by the last CLOCK read (internal). */
  CLOCK_HI: 0x03,
  /** in: a random u32 (non-deterministic, host.read). */
  RANDOM: 0x04,
  /** in: bitmask of pending interrupt lines. out: clears the given bits (acknowledge without taking). */
  IRQ_PENDING: 0x08,
  /** in/out: bitmask of enabled interrupt lines (default 0xff). */
  IRQ_MASK: 0x09,
  /** in/out: handler address (instruction index) for line n is port IVEC + n. */
  IVEC: 0x10,
  /** in/out: timer period in ms (0 = off). The host raises IRQ.TIMER every period. */
  TIMER_PERIOD: 0x20,
  /** out: guest address of the receive buffer. */
  NIC_RX_ADDR: 0x30,
  /** out: capacity of the receive buffer in bytes; a non-zero value arms reception. in: current capacity (0 = not armed). */
  NIC_RX_CAP: 0x31,
  /** in: length of the last packet received. */
  NIC_RX_LEN: 0x32,
  /** out: guest address of the packet to transmit. */
  NIC_TX_ADDR: 0x34,
  /** out: length in bytes; transmits the packet (host.transmit). */
  NIC_TX_LEN: 0x35,
  /** out: guest address for the next disk command. */
  DISK_ADDR: 0x40,
  /** out: first block number for the next disk command. */
  DISK_BLOCK: 0x41,
  /** out: number of blocks for the next disk command (default 1). */
  DISK_COUNT: 0x42,
  /** out: 1 = read (completes later by DMA + IRQ.DISK), 2 = write (completes at once). */
  DISK_CMD: 0x43,
  /** in: 0 idle, 1 read in flight, 2 done, 3 error. */
  DISK_STATUS: 0x44,
  /** Ports 0x80..0xff are host ports: IN calls host.read, OUT calls host.write. */
  HOST_BASE: 0x80,
} as const;

export const DISK_STATUS = { IDLE: 0, BUSY: 1, DONE: 2, ERROR: 3 } as const;
export const DISK_CMD = { READ: 1, WRITE: 2 } as const;

/** Opcodes. `_R` forms take a register third operand, `_I` forms an immediate. */
export const OP = {
  FAULT: 0, // sentinel placed after the last instruction
  NOP: 1,
  HALT: 2,
  MOV_R: 3,
  MOV_I: 4,
  ADD_R: 5, ADD_I: 6,
  SUB_R: 7, SUB_I: 8,
  MUL_R: 9, MUL_I: 10,
  DIV_R: 11, DIV_I: 12,
  DIVU_R: 13, DIVU_I: 14,
  REM_R: 15, REM_I: 16,
  REMU_R: 17, REMU_I: 18,
  AND_R: 19, AND_I: 20,
  OR_R: 21, OR_I: 22,
  XOR_R: 23, XOR_I: 24,
  SHL_R: 25, SHL_I: 26,
  SHR_R: 27, SHR_I: 28,
  SAR_R: 29, SAR_I: 30,
  SLT_R: 31, SLT_I: 32,
  SLTU_R: 33, SLTU_I: 34,
  NOT: 35,
  NEG: 36,
  LDW: 37,
  LDB: 38,
  STW: 39,
  STB: 40,
  BEQ_R: 41, BEQ_I: 42,
  BNE_R: 43, BNE_I: 44,
  BLT_R: 45, BLT_I: 46,
  BGE_R: 47, BGE_I: 48,
  BGT_R: 49, BGT_I: 50,
  BLE_R: 51, BLE_I: 52,
  BLTU_R: 53, BLTU_I: 54,
  BGEU_R: 55, BGEU_I: 56,
  JMP: 57,
  JR: 58,
  CALL: 59,
  CALLR: 60,
  RET: 61,
  PUSH: 62,
  POP: 63,
  EI: 64,
  DI: 65,
  IRET: 66,
  WFI: 67,
  IN: 68,
  OUT_R: 69,
  OUT_I: 70,
  MEMCPY: 71,
  MEMSET: 72,
  MEMCMP: 73,
  HASH: 74,
  LDH: 75,
  STH: 76,
} as const;

export const NUM_OPS = 77;
