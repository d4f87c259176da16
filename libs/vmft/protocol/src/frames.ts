/**
 * The FT log channel's messages.
 *
 * Every source of non-determinism the primary observes becomes a log entry,
 * stamped with a sequence number (1, 2, 3, … per epoch stream, contiguous)
 * and the instruction count at which it happened:
 *
 * - `interrupt` (vector): an interrupt delivered at the boundary after
 *   `icount` instructions retired (the timer is vector 0).
 * - `nic`: a client packet delivered at that boundary (the NIC's receive
 *   interrupt is raised by delivery).
 * - `disk`: completion of the guest's disk request number `reqId`, with the
 *   data read (empty for a write), delivered at that boundary.
 * - `clock` / `random`: the value returned to a device read performed by the
 *   instruction that follows boundary `icount` (i.e. with `icount`
 *   instructions retired before it).
 * - `port`: the value returned to a read of another non-deterministic device
 *   port (the CPU's host ports), like clock/random.
 * - `progress`: nothing happened; the primary has reached `icount`. Sent when
 *   there is nothing else to send, so the backup trails by little and silence
 *   means trouble.
 *
 * Entries are totally ordered by `seq`; `icount` never decreases along `seq`.
 *
 * Acknowledgements go the other way: `seq` is the highest sequence number
 * such that the backup has RECEIVED AND BUFFERED every entry 1..seq (as in
 * VMware FT, acks are sent on receipt, not on execution); `icount` is how
 * far the backup has executed (for lag metrics and throttling). The output
 * rule releases an output tagged with seq s once ack.seq >= s.
 */

export const ENTRY_KINDS = ['interrupt', 'nic', 'disk', 'clock', 'random', 'progress', 'port'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

interface EntryBase {
  /** 1-based, contiguous within a stream. */
  seq: number;
  /** Instructions retired on the primary when the event happened. */
  icount: number;
}
export interface InterruptEntry extends EntryBase {
  kind: 'interrupt';
  vector: number;
}
export interface NicEntry extends EntryBase {
  kind: 'nic';
  packet: Uint8Array;
}
export interface DiskEntry extends EntryBase {
  kind: 'disk';
  reqId: number;
  /** Block contents for a read; empty for a write completion. */
  data: Uint8Array;
}
export interface ClockEntry extends EntryBase {
  kind: 'clock';
  /** Milliseconds (a non-negative safe integer). */
  value: number;
}
export interface RandomEntry extends EntryBase {
  kind: 'random';
  /** An unsigned 32-bit value. */
  value: number;
}
export interface PortEntry extends EntryBase {
  kind: 'port';
  port: number;
  /** An unsigned 32-bit value. */
  value: number;
}
export interface ProgressEntry extends EntryBase {
  kind: 'progress';
}
export type LogEntry = InterruptEntry | NicEntry | DiskEntry | ClockEntry | RandomEntry | PortEntry | ProgressEntry;

/** Entries that answer a device read. */
export type ReadEntry = ClockEntry | RandomEntry | PortEntry;

/** Entries that are delivered at an instruction boundary (as opposed to answers to device reads). */
export function isBoundaryEntry(e: LogEntry): boolean {
  return e.kind !== 'clock' && e.kind !== 'random' && e.kind !== 'port';
}

/** Backup → primary. */
export interface AckFrame {
  type: 'ack';
  epoch: number;
  /** Highest contiguous seq received and buffered. */
  seq: number;
  /** Instructions the backup has executed. */
  icount: number;
  /**
   * The backup's newest checkpoint not yet reported: the machine's state hash
   * at log seq `seq` (instruction `icount`), for the primary to compare with
   * its own at that seq (a mismatch at equal instruction counts means the
   * replicas diverged). Absent in most acks.
   */
  checkpoint?: { seq: number; icount: number; hash: string };
}

/** Longest state hash an ack's checkpoint carries (UTF-8 bytes). */
export const MAX_CHECKPOINT_HASH_BYTES = 64;

/**
 * First frame in each direction of a log stream. The primary says which
 * epoch and VM it streams; the backup answers with the highest seq it
 * already holds so the primary resends from there (reconnect + resend).
 */
export interface HelloFrame {
  type: 'hello';
  epoch: number;
  /** Primary: the seq of the last entry it will not resend; backup: highest contiguous seq held. */
  seq: number;
  vmId: string;
  nodeId: string;
}

/**
 * State transfer for a joining backup: the machine's snapshot taken at
 * instruction `icount`, after log entry `seq` (the log continues at seq+1).
 */
export interface SnapshotFrame {
  type: 'snapshot';
  epoch: number;
  seq: number;
  icount: number;
  state: Uint8Array;
}

export interface EntryFrame {
  type: 'entry';
  entry: LogEntry;
}

/**
 * Primary → backup, observability only: the W3C trace context of the client
 * request whose packet is log entry `seq`, sent just before that entry and
 * only for sampled requests. The backup's spans for the entry (receive, ack,
 * replay) join the request's trace. It is not part of the log: the core never
 * sees it, so it changes neither what the guest sees nor replay; a backup may
 * drop it (bounded memory) and a resend does not repeat it.
 */
export interface TraceFrame {
  type: 'trace';
  seq: number;
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  /** W3C trace flags (bit 0: sampled). */
  flags: number;
}

export type Frame = EntryFrame | AckFrame | HelloFrame | SnapshotFrame | TraceFrame;
