/** An assembled, pre-decoded program (Harvard: code is not in guest memory). */
export interface Program {
  /** A name for messages (the source file name). */
  readonly name: string;
  /** Four Int32 slots per instruction: [op | (d << 8), a, b, c]. */
  readonly code: Int32Array;
  /** Initial image of guest memory, loaded at `dataBase`. */
  readonly data: Uint8Array;
  readonly dataBase: number;
  /** Instruction index where execution starts (label `start`, else 0). */
  readonly entry: number;
  /** Every label and .equ constant: code labels are instruction indices, data labels byte addresses. */
  readonly symbols: Readonly<Record<string, number>>;
  /** Source line of each instruction (for fault messages). */
  readonly lines: Int32Array;
  /** Hex digest of code + data + entry: two CPUs must run the same program id to agree. */
  readonly id: string;
}

/** FNV-1a over bytes, 32-bit. The HASH instruction computes exactly this. */
export function fnv1a(bytes: Uint8Array, start = 0, end = bytes.length, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

export function programId(code: Int32Array, data: Uint8Array, dataBase: number, entry: number): string {
  const c = new Uint8Array(code.buffer, code.byteOffset, code.byteLength);
  let h1 = fnv1a(c);
  h1 = fnv1a(data, 0, data.length, h1);
  h1 = Math.imul(h1 ^ dataBase, 0x01000193) >>> 0;
  h1 = Math.imul(h1 ^ entry, 0x01000193) >>> 0;
  let h2 = fnv1a(data, 0, data.length, 0x1234567);
  h2 = fnv1a(c, 0, c.length, h2);
  h2 = Math.imul(h2 ^ code.length, 0x01000193) >>> 0;
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
