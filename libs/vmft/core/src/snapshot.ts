/**
 * State-transfer envelope: what a joining backup needs besides the machine's
 * own snapshot (the core's view of in-flight disk reads, the request
 * counter, the clock floor).
 *
 *   u32be headerLength | header (JSON, utf-8) | machine snapshot bytes
 */
import { FT_ERR_BAD_SNAPSHOT_ENVELOPE } from './config.ts';

export interface CoreSnapshotHeader {
  v: 1;
  vmId: string;
  icount: number;
  nextReqId: number;
  /** Disk reads issued by the guest and not yet completed: [reqId, block, count]. */
  pendingReads: [number, number, number][];
  lastClock: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeEnvelope(h: CoreSnapshotHeader, machine: Uint8Array): Uint8Array {
  const hb = enc.encode(JSON.stringify(h));
  const out = new Uint8Array(4 + hb.byteLength + machine.byteLength);
  new DataView(out.buffer).setUint32(0, hb.byteLength);
  out.set(hb, 4);
  out.set(machine, 4 + hb.byteLength);
  return out;
}

export function decodeEnvelope(bytes: Uint8Array): { header: CoreSnapshotHeader; machine: Uint8Array } {
  if (bytes.byteLength < 4) throw FT_ERR_BAD_SNAPSHOT_ENVELOPE('too short');
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (4 + n > bytes.byteLength) throw FT_ERR_BAD_SNAPSHOT_ENVELOPE('header runs past the end');
  let header: CoreSnapshotHeader;
  try {
    header = JSON.parse(dec.decode(bytes.subarray(4, 4 + n))) as CoreSnapshotHeader;
  } catch {
    throw FT_ERR_BAD_SNAPSHOT_ENVELOPE('header is not JSON');
  }
  if (
    header?.v !== 1 ||
    !Number.isSafeInteger(header.icount) ||
    !Number.isSafeInteger(header.nextReqId) ||
    !Array.isArray(header.pendingReads) ||
    !Number.isSafeInteger(header.lastClock)
  ) {
    throw FT_ERR_BAD_SNAPSHOT_ENVELOPE('header fields missing or malformed');
  }
  return { header, machine: bytes.slice(4 + n) };
}
