import type { AckFrame, LogEntry, SnapshotFrame, VmStatus } from '@mr/vmft-protocol';
import type { Machine } from './machine.ts';

export type StartRole = 'primary' | 'backup';

/** Core configuration: a plain object with explicit limits (see validateConfig). */
export interface FtConfig {
  vmId: string;
  nodeId: string;
  role: StartRole;
  /**
   * The machine. A primary and a fresh backup start from the same image
   * (same program, icount 0). A joining backup (join: true) may omit it: it
   * gets one from `restore` when the snapshot arrives.
   */
  machine?: Machine;
  /** Builds a machine from snapshot bytes (needed to join). */
  restore?: (state: Uint8Array) => Machine;
  /** This backup joins a running primary by state transfer. */
  join?: boolean;
  /** Source of the primary's random reads (an injected, seeded or crypto source): a u32. */
  random: () => number;
  /** Answers reads of host ports 0x80..0xff on the live primary (default 0). Logged. */
  hostRead?: (port: number) => number;
  /**
   * The primary expects a backup: it logs and holds outputs until acked
   * (default true). False = start alone (no log, outputs released at once)
   * until a backup joins.
   */
  withBackup?: boolean;
  /** Epoch the primary asks test-and-set for at start (default 1). */
  startEpoch?: number;

  /** Ticks of silence (no ack on the primary, no entry on the backup) before the peer is suspected. */
  suspectTicks?: number;
  /**
   * Ticks of silence allowed while a joiner takes the snapshot (the state
   * transfer window, default 250: 5 s at 20 ms ticks): the primary suspects
   * a joiner, and a joiner its primary, only after this long, so a big
   * snapshot on a busy machine is not raced by failure suspicion. Bounded:
   * a joiner that dies mid-transfer costs the primary at most this long
   * holding outputs before it goes on alone. At least suspectTicks.
   */
  transferTicks?: number;
  /** The primary logs a progress entry at least this often (ticks) while it has a backup. */
  heartbeatTicks?: number;
  /** The primary resends from the last acked seq when acks make no progress for this many ticks. */
  resendTicks?: number;
  /** Instructions per `run` input when the input names no budget. */
  sliceInstructions?: number;
  /** A run slice that advanced at least this far past the last entry ends with a progress entry (0: any advance). */
  progressInstructions?: number;
  /** The primary stalls (does not execute) while this many log bytes are unacknowledged. */
  maxUnackedBytes?: number;
  /**
   * The primary stalls while the backup's executed icount trails by more than
   * the lag limit: the backup's measured replay speed (instructions per ms,
   * from the icounts its acks report over host time) times `maxLagMs`, kept
   * within [minLagInstructions, maxLagInstructions]. Until the speed is
   * measured the limit is maxLagInstructions. The bound is on the time a
   * backup needs to catch up at failover, whatever the machine's speed.
   */
  maxLagInstructions?: number;
  /** The lag limit's floor (default 2,000,000; maxLagInstructions if that is lower): below it the primary never waits for the backup. */
  minLagInstructions?: number;
  /** The catch-up bound the lag limit is sized for, in ms of the backup's replay (default 200; 0 = the limit is maxLagInstructions). */
  maxLagMs?: number;
  /** The primary stalls while this many outputs are held. */
  maxHeldOutputs?: number;
  /** Client packets waiting for the guest's NIC buffer, at most. */
  maxInboxPackets?: number;
  /**
   * Adaptive failure detection (detector.ts): after suspectTicks silent ticks
   * the peer is suspected only once φ (from the gaps between its past
   * arrivals, the longest of them allowed again) reaches phiThreshold, or the
   * silence reaches suspectMaxMs. So a loaded machine whose messages were
   * seen to arrive late gets more slack, and a stall is still detected within
   * max(suspectTicks ticks, suspectMaxMs). 0 = off (the ticks alone decide).
   * Default 8.
   */
  phiThreshold?: number;
  /** Gaps the detector remembers (default 1000). */
  phiWindow?: number;
  /** Floor of the gaps' standard deviation (ms, default 20). */
  phiMinSdMs?: number;
  /** Silence (host ms) after which the peer is suspected whatever φ says (default 2000), once suspectTicks silent ticks passed. */
  suspectMaxMs?: number;
  /** About one progress entry in this many is a checkpoint (chosen by a hash of its seq): both sides hash there. 0 = off. */
  checkpointEvery?: number;
}

export type ResolvedConfig = Required<Omit<FtConfig, 'machine' | 'restore' | 'hostRead'>> &
  Pick<FtConfig, 'machine' | 'restore' | 'hostRead'>;

/** What the shell feeds the core. `nowMs` is the host clock (ms since epoch). */
export type FtInput =
  /**
   * Every tickMs: counts silence, heartbeats, resends, fires the guest timer
   * when due. `ticks` (default 1): how many tick periods of host time passed
   * since the last tick. A primary whose backup was silent that long in host
   * time (this process was stopped or starved) may have been deposed: it is
   * not live until the backup acks an entry created after the silence.
   * Suspicion (which leads to test-and-set) counts tick inputs.
   */
  | { type: 'tick'; nowMs: number; ticks?: number }
  /** Execute: the primary runs a slice; the backup replays what it holds. */
  | { type: 'run'; nowMs: number; budget?: number }
  /** A client packet for the guest's NIC (live primary only; check accepting() first). `tag` comes back in events. */
  | { type: 'packet'; packet: Uint8Array; tag?: string }
  /** Storage answered a disk read the core asked for (fx.disk). */
  | { type: 'disk-read-done'; reqId: number; data: Uint8Array }
  /** Storage refused a disk write: epoch `epoch` is newer than ours. This node is fenced. */
  | { type: 'disk-refused'; reqId: number; epoch: number }
  /** Backup: entries received on the log stream, in stream order. */
  | { type: 'entries'; entries: LogEntry[]; nowMs?: number }
  /** Primary: an ack received on the log stream. */
  /** checkpoint: the backup's state hash at a log seq (see AckFrame), compared with the primary's own. */
  /** nowMs (host clock at arrival; default the last one seen): times the backup's replay speed (the lag limit). */
  | { type: 'ack'; epoch: number; seq: number; icount: number; checkpoint?: { seq: number; icount: number; hash: string } | undefined; nowMs?: number }
  /**
   * A log stream is open and the peer's hello arrived. Primary: `seq` is the
   * backup's highest contiguous seq held (resend after it). Backup: `epoch`
   * is the primary's epoch.
   */
  | { type: 'link-up'; epoch: number; seq: number }
  /** The log stream closed. */
  | { type: 'link-down' }
  /**
   * The shell found the peer's process gone: its log stream broke and its
   * address refuses connections (kill -9, a crash). Suspect it now, as after
   * suspectTicks of silence, instead of waiting them out. A stalled peer keeps
   * its stream open and is still caught by the silence; a network break
   * (address unreachable, not refused) is not this input either.
   */
  | { type: 'peer-lost' }
  /** Storage's answer to fx.tas. */
  | { type: 'tas-result'; epoch: number; won: boolean; owner?: string }
  /** Primary: a new backup asks to join (produces fx.snapshot). */
  | { type: 'join' }
  /** Joining backup: the primary's snapshot. */
  | { type: 'snapshot'; frame: SnapshotFrame };

/** An output (NIC transmit) released under the output rule. */
export interface Output {
  /** Log seq the output depends on (released once acked seq >= this). */
  seq: number;
  /** Instruction count at which the guest produced it. */
  icount: number;
  packet: Uint8Array;
}

/** A disk operation for the shell to carry out against the storage node. */
export type DiskOp =
  | { op: 'read'; reqId: number; block: number; count: number }
  | { op: 'write'; reqId: number; block: number; count: number; data: Uint8Array; epoch: number };

export type FtEvent =
  | { type: 'live'; epoch: number; icount: number }
  /** `cause`: silence for the suspicion window, or the shell's `peer-lost` (the stream broke and the peer's address refuses). */
  | { type: 'suspected'; peer: 'primary' | 'backup'; silentTicks: number; cause: 'silence' | 'peer-lost' }
  /** Primary: the backup was silent for the suspicion window in host time; not live until it acks `seq`. */
  | { type: 'unconfirmed'; silentTicks: number; seq: number }
  /** Primary: the backup acked an entry created after the silence: live again. */
  | { type: 'confirmed'; seq: number }
  | { type: 'drained'; seq: number; icount: number }
  | { type: 'tas-requested'; epoch: number }
  | { type: 'alone'; epoch: number }
  | { type: 'stopped'; reason: string }
  | { type: 'stalled'; reason: string }
  | { type: 'resumed' }
  | { type: 'resend'; fromSeq: number }
  | { type: 'gap'; expected: number; got: number }
  | { type: 'stale'; what: string; epoch: number }
  | { type: 'packet-dropped'; tag?: string; reason: string }
  | { type: 'packet-delivered'; tag?: string; seq: number; icount: number }
  | { type: 'checkpoint'; seq: number; icount: number; hash: string }
  /** Primary: the backup's state hash at a checkpoint differs from this node's at the same seq and instruction count (the replicas diverged). */
  | { type: 'checkpoint-mismatch'; seq: number; icount: number; hash: string; backupHash: string }
  | { type: 'joining'; seq: number; icount: number; bytes: number }
  | { type: 'installed'; seq: number; icount: number; epoch: number }
  | { type: 'guest-stopped'; reason: 'halt' | 'fault'; message?: string };

/** Effects of the steps since the last advance(). Carry them out in this order: */
export interface FtReady {
  /** 1. Primary: entries to write to the log stream, in order (new ones and resends). */
  entries: LogEntry[];
  /** 1'. Primary: state transfer for a joining backup (send before `entries`). */
  snapshot?: SnapshotFrame;
  /** 1''. Backup: acknowledgement to write to the stream. */
  ack?: AckFrame;
  /** 2. Test-and-set to ask the storage node for. */
  tas?: { epoch: number };
  /** 3. Disk operations (reads at once; writes only after the output rule, with the epoch for fencing). */
  disk: DiskOp[];
  /** 4. Outputs released to clients (the output rule is met). */
  outputs: Output[];
  /** Things that happened, for logs/metrics/traces. */
  events: FtEvent[];
}

export type FtStatus = Omit<VmStatus, 'guest' | 'live_url'>;

export type Accepting = { ok: true } | { ok: false; reason: 'not-live' | 'stopped' | 'backpressure' };

export type { Machine };
