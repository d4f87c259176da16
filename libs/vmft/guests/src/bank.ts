/**
 * Packet format of the `bank` guest (little-endian, 4-byte aligned fields).
 *
 * Request:  u32 tag, u8 op (1 transfer, 2 query), 3 bytes padding,
 *           transfer: u32 from, u32 to, i32 amount, u32 xid (non-zero: retries
 *           with the same xid are applied once; 0: no deduplication).
 * Response: u32 tag, u8 status (0 ok, 1 insufficient funds, 2 no such account,
 *           3 bad request), 3 bytes padding;
 *           query adds u32 count, u32 total, count × i32 balances.
 *
 * The guest holds BANK_ACCOUNTS accounts, BANK_INITIAL each on a fresh disk;
 * it loads them from disk block 0 at boot and writes block 0 after every
 * applied transfer (block 0: u32 magic "BANK", u32 count, i32 balances).
 */
import { createError } from '@mr/errors';

export const ErrBankPacket = createError<[string]>('FT_ERR_BANK_PACKET', 'bad bank packet: %s', 502);
export const BANK_ACCOUNTS = 16;
export const BANK_INITIAL = 1000;
export const BANK_MAGIC = 0x4b4e4142;
export const BANK_STATUSES = ['ok', 'insufficient-funds', 'no-such-account', 'bad-request'] as const;
export type BankStatus = (typeof BANK_STATUSES)[number];

export type BankRequest =
  | { tag: number; op: 'transfer'; from: number; to: number; amount: number; xid?: number }
  | { tag: number; op: 'query' };

export interface BankResponse {
  tag: number;
  status: BankStatus;
  /** Present for queries. */
  total?: number;
  balances?: number[];
}

export function encodeBankRequest(r: BankRequest): Uint8Array {
  const out = new Uint8Array(r.op === 'transfer' ? 24 : 8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, r.tag >>> 0, true);
  out[4] = r.op === 'transfer' ? 1 : 2;
  if (r.op === 'transfer') {
    dv.setUint32(8, r.from >>> 0, true);
    dv.setUint32(12, r.to >>> 0, true);
    dv.setInt32(16, r.amount | 0, true);
    dv.setUint32(20, (r.xid ?? 0) >>> 0, true);
  }
  return out;
}

export function decodeBankResponse(b: Uint8Array): BankResponse {
  if (b.length < 8) throw ErrBankPacket(`response of ${b.length} bytes is too short`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const status = BANK_STATUSES[b[4]!];
  if (status === undefined) throw ErrBankPacket(`unknown status ${b[4]}`);
  const res: BankResponse = { tag: dv.getUint32(0, true), status };
  if (b.length >= 16) {
    const count = dv.getUint32(8, true);
    if (b.length < 16 + 4 * count) throw ErrBankPacket('balances truncated');
    res.total = dv.getInt32(12, true);
    res.balances = Array.from({ length: count }, (_, i) => dv.getInt32(16 + 4 * i, true));
  }
  return res;
}

/** A disk block 0 holding the given balances (to seed a bank's disk). */
export function bankDiskBlock(balances: readonly number[]): Uint8Array {
  const out = new Uint8Array(512);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, BANK_MAGIC, true);
  dv.setUint32(4, balances.length, true);
  balances.forEach((v, i) => dv.setInt32(8 + 4 * i, v, true));
  return out;
}
