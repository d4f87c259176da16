/**
 * The snapshot format: a header, the program id, the state words (state.ts),
 * the fault text, a bitmap of non-zero pages, then those pages.
 */
import { createError } from '@mr/errors';
import { PAGE_SHIFT, PAGE_SIZE } from './isa.ts';
import { STATE_WORDS } from './state.ts';

export const ErrBadSnapshot = createError<[string]>('FT_ERR_BAD_SNAPSHOT', 'bad snapshot: %s', 400);

const SNAP_MAGIC = 0x50434d56; // 'VMCP'
const SNAP_VERSION = 1;
const HEADER_BYTES = 24;

export interface SnapshotParts {
  readonly memorySize: number;
  readonly programId: string;
  readonly words: Int32Array;
  readonly faultMessage: string;
  readonly mem8: Uint8Array;
}

function headerSize(idLen: number, nWords: number, faultLen: number, numPages: number): number {
  return (HEADER_BYTES + idLen + nWords * 4 + faultLen + ((numPages + 7) >>> 3) + 3) & ~3;
}

export function encodeSnapshot(s: SnapshotParts): Uint8Array {
  const numPages = s.memorySize >>> PAGE_SHIFT;
  const mem32 = new Int32Array(s.mem8.buffer, s.mem8.byteOffset, s.memorySize >>> 2);
  const nonzero: number[] = [];
  for (let p = 0; p < numPages; p++) {
    const start = p << (PAGE_SHIFT - 2), end = start + (PAGE_SIZE >>> 2);
    for (let i = start; i < end; i++) if (mem32[i] !== 0) { nonzero.push(p); break; }
  }
  const id = new TextEncoder().encode(s.programId);
  const fault = new TextEncoder().encode(s.faultMessage);
  const size = headerSize(id.length, s.words.length, fault.length, numPages);
  const out = new Uint8Array(size + nonzero.length * PAGE_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, SNAP_MAGIC, true);
  dv.setUint32(4, SNAP_VERSION, true);
  dv.setUint32(8, s.memorySize, true);
  dv.setUint32(12, id.length, true);
  dv.setUint32(16, s.words.length, true);
  dv.setUint32(20, fault.length, true);
  let off = HEADER_BYTES;
  out.set(id, off); off += id.length;
  for (let i = 0; i < s.words.length; i++, off += 4) dv.setInt32(off, s.words[i]!, true);
  out.set(fault, off); off += fault.length;
  for (const p of nonzero) out[off + (p >>> 3)] |= 1 << (p & 7);
  off = size;
  for (const p of nonzero) {
    out.set(s.mem8.subarray(p << PAGE_SHIFT, (p + 1) << PAGE_SHIFT), off);
    off += PAGE_SIZE;
  }
  return out;
}

export interface DecodedSnapshot {
  readonly words: Int32Array;
  readonly faultMessage: string;
  /** The non-zero pages, in order; their bytes start at `pagesAt`. */
  readonly pages: readonly number[];
  readonly pagesAt: number;
}

/** Checks a snapshot's framing against the machine it is for and returns its parts (memory is not touched). */
export function decodeSnapshot(snap: Uint8Array, expect: { memorySize: number; programId: string }): DecodedSnapshot {
  if (snap.length < HEADER_BYTES) throw ErrBadSnapshot('too short');
  const dv = new DataView(snap.buffer, snap.byteOffset, snap.byteLength);
  if (dv.getUint32(0, true) !== SNAP_MAGIC) throw ErrBadSnapshot('bad magic');
  if (dv.getUint32(4, true) !== SNAP_VERSION) throw ErrBadSnapshot(`unknown version ${dv.getUint32(4, true)}`);
  if (dv.getUint32(8, true) !== expect.memorySize) throw ErrBadSnapshot(`memory size ${dv.getUint32(8, true)} differs from ${expect.memorySize}`);
  const idLen = dv.getUint32(12, true), nWords = dv.getUint32(16, true), faultLen = dv.getUint32(20, true);
  if (nWords !== STATE_WORDS) throw ErrBadSnapshot(`state has ${nWords} words, expected ${STATE_WORDS}`);
  const numPages = expect.memorySize >>> PAGE_SHIFT;
  const size = headerSize(idLen, nWords, faultLen, numPages);
  if (snap.length < size) throw ErrBadSnapshot('truncated header');
  let off = HEADER_BYTES;
  const id = new TextDecoder().decode(snap.subarray(off, off + idLen)); off += idLen;
  if (id !== expect.programId) throw ErrBadSnapshot(`taken from program ${id}, this CPU runs ${expect.programId}`);
  const words = new Int32Array(nWords);
  for (let i = 0; i < nWords; i++, off += 4) words[i] = dv.getInt32(off, true);
  const faultMessage = new TextDecoder().decode(snap.subarray(off, off + faultLen)); off += faultLen;
  const pages: number[] = [];
  for (let p = 0; p < numPages; p++) if ((snap[off + (p >>> 3)]! >>> (p & 7)) & 1) pages.push(p);
  if (snap.length !== size + pages.length * PAGE_SIZE) throw ErrBadSnapshot(`length ${snap.length}, expected ${size + pages.length * PAGE_SIZE}`);
  return { words, faultMessage, pages, pagesAt: size };
}

/** Replaces `mem8` with the snapshot's memory image. */
export function loadPages(snap: Uint8Array, d: DecodedSnapshot, mem8: Uint8Array): void {
  mem8.fill(0);
  let off = d.pagesAt;
  for (const p of d.pages) {
    mem8.set(snap.subarray(off, off + PAGE_SIZE), p << PAGE_SHIFT);
    off += PAGE_SIZE;
  }
}
