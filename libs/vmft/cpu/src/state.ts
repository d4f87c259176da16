/**
 * The CPU's non-memory state as a fixed list of named 32-bit words. The one
 * layout drives the state hash, snapshot and restore, so a field added to the
 * machine is added here once (and bumps the snapshot version).
 */
import { NUM_IRQ_LINES, NUM_REGS } from './isa.ts';

/** What the state words are read from and written to (the Cpu's fields). */
export interface CpuStateFields {
  readonly regs: Int32Array;
  readonly ivec: Int32Array;
  pc: number;
  icount: number;
  ie: boolean;
  halted: boolean;
  waiting: boolean;
  /** Only its presence is a state word (flag 8); the text travels beside the words in a snapshot. */
  readonly faulted: boolean;
  irqPending: number;
  irqMask: number;
  timerPeriodMs: number;
  nicRxAddr: number;
  nicRxCap: number;
  nicRxLen: number;
  nicTxAddr: number;
  diskAddr: number;
  diskBlock: number;
  diskCount: number;
  diskStatus: number;
  diskReadAddr: number;
  diskReadLen: number;
  clockHi: number;
}

const REG_NAMES = Array.from({ length: NUM_REGS }, (_, i) => `r${i}`);
const IVEC_NAMES = Array.from({ length: NUM_IRQ_LINES }, (_, i) => `ivec${i}`);

/** The layout, in order. Changing it changes every state hash and snapshot. */
export const STATE: readonly string[] = [
  ...REG_NAMES,
  'pc', 'icountLo', 'icountHi', 'flags', 'irqPending', 'irqMask',
  ...IVEC_NAMES,
  'timerPeriodMs', 'nicRxAddr', 'nicRxCap', 'nicRxLen', 'nicTxAddr',
  'diskAddr', 'diskBlock', 'diskCount', 'diskStatus', 'diskReadAddr', 'diskReadLen', 'clockHi',
];
export const STATE_WORDS = STATE.length;

/** Index of a named word in the layout. */
export function stateIndex(name: string): number {
  const i = STATE.indexOf(name);
  if (i < 0) throw new RangeError(`no state word ${name}`);
  return i;
}

const FLAG_IE = 1, FLAG_HALTED = 2, FLAG_WAITING = 4, FLAG_FAULTED = 8;

type Scalar = Exclude<keyof CpuStateFields, 'regs' | 'ivec' | 'icount' | 'ie' | 'halted' | 'waiting' | 'faulted'>;
const SCALARS: readonly Scalar[] = [
  'pc', 'irqPending', 'irqMask', 'timerPeriodMs', 'nicRxAddr', 'nicRxCap', 'nicRxLen', 'nicTxAddr',
  'diskAddr', 'diskBlock', 'diskCount', 'diskStatus', 'diskReadAddr', 'diskReadLen', 'clockHi',
];
const AT = {
  regs: stateIndex('r0'),
  ivec: stateIndex('ivec0'),
  icountLo: stateIndex('icountLo'),
  icountHi: stateIndex('icountHi'),
  flags: stateIndex('flags'),
};
const SCALAR_AT = SCALARS.map((name) => [name, stateIndex(name)] as const);
/** Words restored as unsigned (addresses and counts the machine compares unsigned). */
const UNSIGNED = new Set<Scalar>(['nicRxAddr', 'nicTxAddr', 'diskAddr', 'diskBlock', 'diskCount']);

/** The state words of `f`. */
export function encodeState(f: CpuStateFields): Int32Array {
  const s = new Int32Array(STATE_WORDS);
  s.set(f.regs.subarray(0, NUM_REGS), AT.regs);
  s.set(f.ivec, AT.ivec);
  s[AT.icountLo] = f.icount % 4294967296 | 0;
  s[AT.icountHi] = Math.floor(f.icount / 4294967296);
  s[AT.flags] = (f.ie ? FLAG_IE : 0) | (f.halted ? FLAG_HALTED : 0) | (f.waiting ? FLAG_WAITING : 0) | (f.faulted ? FLAG_FAULTED : 0);
  for (const [name, i] of SCALAR_AT) s[i] = f[name];
  return s;
}

/** The words as named values, for checking before anything is applied. */
export function readState(s: Int32Array): { pc: number; icount: number; faulted: boolean; diskReadAddr: number; diskReadLen: number } {
  return {
    pc: s[stateIndex('pc')]!,
    icount: s[AT.icountHi]! * 4294967296 + (s[AT.icountLo]! >>> 0),
    faulted: (s[AT.flags]! & FLAG_FAULTED) !== 0,
    diskReadAddr: s[stateIndex('diskReadAddr')]! >>> 0,
    diskReadLen: s[stateIndex('diskReadLen')]! >>> 0,
  };
}

/** Writes the words back into `f` (everything but the fault text, which the caller sets). */
export function applyState(f: CpuStateFields, s: Int32Array): void {
  f.regs.set(s.subarray(AT.regs, AT.regs + NUM_REGS));
  f.ivec.set(s.subarray(AT.ivec, AT.ivec + NUM_IRQ_LINES));
  f.icount = s[AT.icountHi]! * 4294967296 + (s[AT.icountLo]! >>> 0);
  const flags = s[AT.flags]!;
  f.ie = (flags & FLAG_IE) !== 0;
  f.halted = (flags & FLAG_HALTED) !== 0;
  f.waiting = (flags & FLAG_WAITING) !== 0;
  for (const [name, i] of SCALAR_AT) f[name] = UNSIGNED.has(name) ? s[i]! >>> 0 : s[i]!;
}
