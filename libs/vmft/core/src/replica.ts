/**
 * One FT replica (primary or backup) as a pure, deterministic state machine.
 * See index.ts for how a shell drives it.
 */
import { entryWireSize, isBoundaryEntry, type LogEntry, type SnapshotFrame, type HelloFrame } from '@mr/vmft-protocol';
import { validateConfig } from './config.ts';
import { DEVICES, type DeviceHost, type DiskRequest, type Machine } from './machine.ts';
import { decodeEnvelope, encodeEnvelope } from './snapshot.ts';
import { Queue } from './queue.ts';
import { PhiDetector } from './detector.ts';
import type { Accepting, DiskOp, FtConfig, FtInput, FtReady, FtStatus, Output, ResolvedConfig } from './types.ts';

type Role = 'primary' | 'backup' | 'joining' | 'stopped';
type Peer = 'none' | 'connected' | 'suspected' | 'lost' | 'joining';
type TasPurpose = 'start' | 'alone' | 'go-live';

type Held =
  | { kind: 'packet'; seq: number; icount: number; packet: Uint8Array }
  | { kind: 'write'; seq: number; icount: number; reqId: number; block: number; count: number; data: Uint8Array };

type NewEntry = LogEntry extends infer E ? (E extends LogEntry ? Omit<E, 'seq'> : never) : never;

interface Checkpoint {
  seq: number;
  icount: number;
  hash: string;
}

function emptyReady(): FtReady {
  return { entries: [], disk: [], outputs: [], events: [] };
}

const CHECKPOINT_RING = 32;
/** Replay-speed samples span at least this much host time (ms). */
const RATE_SAMPLE_MS = 100;
/** Weight of a new replay-speed sample in the estimate. */
const RATE_WEIGHT = 0.3;

export class FtReplica {
  readonly config: ResolvedConfig;
  #m: Machine | undefined;
  #role: Role;
  #live = false;
  #epoch = 0;
  #reason: string | undefined;
  #now = 0;
  #fx: FtReady = emptyReady();

  // ---- log (primary: entries created; backup: entries received)
  /** Primary: last seq created. Backup: highest contiguous seq received. */
  #lastSeq = 0;
  /** Primary: highest seq acked. Backup: highest seq consumed (executed). */
  #acked = 0;
  /** Primary: entries seq > acked, kept for resends. Backup: entries received, not yet consumed. */
  #log = new Queue<LogEntry>();
  #logBytes = 0;
  #bytesTotal = 0;
  #sendCursor = 0;
  #lastEntryIcount = 0;

  // ---- peer
  #peer: Peer;
  #linkUp = false;
  #silent = 0;
  /** Primary: tick periods (host time, stalls included) since the backup was last heard. */
  #silentFor = 0;
  /**
   * Primary: set when the backup was silent for the suspicion window in host
   * time (e.g. this process was stopped): the backup may have taken over, so
   * this node is not live until an ack for this seq (an entry created after
   * the silence) proves the backup still follows it, or test-and-set says it
   * still holds the VM.
   */
  #confirmSeq: number | undefined;
  #sinceAppend = 0;
  #sinceAckProgress = 0;
  #peerIcount = 0;
  #stalled: string | undefined;
  /** The adaptive failure detector over the peer's arrivals (acks on a primary, entries on a backup); undefined when off. */
  readonly #detector: PhiDetector | undefined;
  /** Primary: the backup's replay speed (instructions per ms; 0 until measured) and the lag limit sized from it. */
  #replayRate = 0;
  #lagLimit: number;
  /** Primary: where the current replay-speed sample started (host ms, the backup's icount). */
  #rateFrom: { ms: number; icount: number } | undefined;

  // ---- outputs and devices
  #held: Held[] = [];
  #released = 0;
  #suppressed = 0;
  #inbox: { packet: Uint8Array; tag?: string }[] = [];
  #lastClock = 0;
  #nextTimerAt: number | undefined;
  #nextReqId = 1;
  #pendingReads = new Map<number, { block: number; count: number }>();
  /** Backup: the newest content of each block the guest wrote (reissued at go-live). */
  #written = new Map<number, { reqId: number; count: number; data: Uint8Array }>();

  // ---- failover
  #tas: { epoch: number; purpose: TasPurpose } | undefined;
  #draining = false;
  #checkpoints: Checkpoint[] = [];
  /** Backup: seq of the newest checkpoint already sent in an ack. */
  #checkpointSent = 0;
  #guestStopped = false;

  constructor(config: FtConfig) {
    this.config = validateConfig(config);
    const c = this.config;
    this.#lagLimit = c.maxLagInstructions;
    if (c.phiThreshold > 0) this.#detector = new PhiDetector({ threshold: c.phiThreshold, windowSize: c.phiWindow, minSdMs: c.phiMinSdMs, minMs: 0, maxMs: c.suspectMaxMs });
    this.#m = c.machine;
    if (c.role === 'primary') {
      this.#role = 'primary';
      this.#peer = c.withBackup ? 'connected' : 'none';
      this.#requestTas(c.startEpoch, 'start');
    } else {
      this.#role = c.join ? 'joining' : 'backup';
      this.#peer = c.join ? 'joining' : 'none';
    }
    this.#m?.setHost(this.#role === 'primary' ? this.#primaryHost : this.#backupHost);
    if (this.#m) this.#lastEntryIcount = this.#m.icount;
  }

  // =================================================================== verbs

  /**
   * Feeds one input. Outcomes are data: a backup whose replay disagrees with
   * the log stops (role 'stopped', a `stopped` event whose reason starts with
   * "diverged:"). A throw means a broken invariant: the shell must stop serving.
   */
  step(input: FtInput): void {
    if (this.#role === 'stopped') return;
    switch (input.type) {
      case 'tick':
        this.#now = Math.max(this.#now, input.nowMs);
        this.#tick(Math.max(1, Math.floor(input.ticks ?? 1)));
        break;
      case 'run':
        this.#now = Math.max(this.#now, input.nowMs);
        if (this.#role === 'primary') this.#runPrimary(input.budget ?? this.config.sliceInstructions);
        else if (this.#role === 'backup') this.#replay(input.budget ?? this.config.sliceInstructions);
        break;
      case 'packet':
        this.#onPacket(input.packet, input.tag);
        break;
      case 'disk-read-done':
        this.#onDiskReadDone(input.reqId, input.data);
        break;
      case 'disk-refused':
        if (input.epoch > this.#epoch) this.#stop(`fenced: storage refused a write of epoch ${this.#epoch} (storage is at epoch ${input.epoch})`);
        break;
      case 'entries':
        if (input.nowMs !== undefined) this.#now = Math.max(this.#now, input.nowMs);
        this.#onEntries(input.entries);
        break;
      case 'ack':
        if (input.nowMs !== undefined) this.#now = Math.max(this.#now, input.nowMs);
        this.#onAck(input.epoch, input.seq, input.icount);
        if (input.checkpoint && input.epoch === this.#epoch) this.#compareCheckpoint(input.checkpoint);
        break;
      case 'link-up':
        this.#onLinkUp(input.epoch, input.seq);
        break;
      case 'link-down':
        this.#linkUp = false;
        if (this.#role === 'primary') this.#sendCursor = this.#acked;
        break;
      case 'peer-lost':
        // Only while no stream is up: a peer that came back (a new stream) is not lost.
        if (this.#linkUp) break;
        if (this.#role === 'primary') {
          if (this.#peer !== 'none' && this.#peer !== 'suspected' && this.#live) this.#suspectBackup('peer-lost');
        } else if ((this.#role === 'backup' && this.#epoch > 0) || this.#role === 'joining') {
          if (!this.#draining) this.#suspectPrimary('peer-lost');
        }
        break;
      case 'tas-result':
        this.#onTas(input.epoch, input.won, input.owner);
        break;
      case 'join':
        this.#onJoin();
        break;
      case 'snapshot':
        this.#onSnapshot(input.frame);
        break;
    }
    this.#flush();
  }

  /** The effects accumulated since the last advance(). */
  ready(): FtReady {
    return this.#fx;
  }

  /** The shell has taken (or carried out) the effects returned by ready(). */
  advance(): void {
    this.#fx = emptyReady();
  }

  // =================================================================== queries

  /** Whether a client packet would be taken now (check before feeding `packet`). */
  accepting(): Accepting {
    if (this.#role === 'stopped') return { ok: false, reason: 'stopped' };
    if (!this.live) return { ok: false, reason: 'not-live' };
    if (this.#inbox.length >= this.config.maxInboxPackets || this.#stallReason() !== undefined) return { ok: false, reason: 'backpressure' };
    return { ok: true };
  }

  /** A primary that held its epoch but may have been deposed since (its backup was silent too long): not live. */
  get mayBeDeposed(): boolean {
    return this.#role === 'primary' && this.#live && (this.#peer === 'suspected' || this.#confirmSeq !== undefined);
  }
  get role(): Role {
    return this.#role;
  }
  /**
   * Whether this node serves as the live primary now. A primary whose backup
   * went silent for the suspicion window may have been deposed (the backup
   * may have taken over): it is not live until test-and-set says it still
   * holds the VM (it then goes on alone) or it stops.
   */
  get live(): boolean {
    return this.#role === 'primary' && this.#live && this.#peer !== 'suspected' && this.#confirmSeq === undefined;
  }
  get epoch(): number {
    return this.#epoch;
  }
  get icount(): number {
    return this.#m?.icount ?? 0;
  }
  get reason(): string | undefined {
    return this.#reason;
  }
  /** The peer's state as status() reports it, without the rest of status() (cheap: for traces). */
  get peerState(): FtStatus['peer']['state'] {
    return this.#peer;
  }
  /** Backup: the highest log seq replayed (consumed by the guest); 0 on other roles. Cheap: for traces. */
  get replayedSeq(): number {
    return this.#role === 'backup' ? this.#acked : 0;
  }
  /** The machine (read it; never drive it directly). Undefined while joining. */
  get machine(): Machine | undefined {
    return this.#m;
  }
  /** The backup link as status() reports it, without the state hash (cheap enough to read on every tick). */
  link(): { peer: Peer; sent: number; acked: number } {
    return { peer: this.#peer, sent: this.#lastSeq, acked: this.#acked };
  }
  /** Primary: the lag limit now (instructions) and the backup's measured replay speed it is sized from (instructions per ms, 0 = not yet measured). */
  lagLimit(): { instructions: number; replayPerMs: number } {
    return { instructions: this.#lagLimit, replayPerMs: this.#replayRate };
  }
  /** Recent checkpoints (seq, icount, hash), oldest first: compare them across nodes. */
  checkpoints(): readonly Checkpoint[] {
    return this.#checkpoints;
  }

  /** The hello frame this side sends when a log stream opens. */
  hello(): HelloFrame {
    return { type: 'hello', epoch: this.#epoch, seq: this.#role === 'primary' ? this.#acked : this.#lastSeq, vmId: this.config.vmId, nodeId: this.config.nodeId };
  }

  status(): FtStatus {
    const m = this.#m;
    const last = this.#checkpoints[this.#checkpoints.length - 1];
    const useCheckpoint = last !== undefined && (this.#role === 'backup' || (this.#role === 'primary' && this.#peer !== 'none'));
    const hash = useCheckpoint ? { icount: last.icount, value: last.hash } : { icount: m?.icount ?? 0, value: m ? m.stateHash() : '' };
    const isPrimary = this.#role === 'primary';
    const lagBase = isPrimary ? m?.icount ?? 0 : this.#lastEntryIcount;
    const other = isPrimary ? this.#peerIcount : m?.icount ?? 0;
    return {
      vmId: this.config.vmId,
      nodeId: this.config.nodeId,
      role: this.#role,
      live: this.live,
      epoch: this.#epoch,
      icount: m?.icount ?? 0,
      log: { sent: this.#lastSeq, acked: this.#acked, unackedBytes: this.#logBytes, bytesTotal: this.#bytesTotal },
      outputs: { held: this.#held.length, released: this.#released, suppressed: this.#suppressed },
      peer: {
        state: this.#peer,
        silentTicks: this.#silent,
        icount: isPrimary ? this.#peerIcount : this.#lastEntryIcount,
        lagInstructions: this.#peer === 'none' ? 0 : lagBase - other,
      },
      hash,
      ...(this.#reason !== undefined ? { reason: this.#reason } : {}),
    };
  }

  // =================================================================== primary

  #primaryHost: DeviceHost = {
    read: (port, icount) => {
      let value: number;
      if (port === DEVICES.clockPort) {
        value = Math.max(this.#lastClock, Math.floor(this.#now));
        this.#lastClock = value;
        this.#append({ kind: 'clock', icount, value });
      } else if (port === DEVICES.randomPort) {
        value = this.config.random() >>> 0;
        this.#append({ kind: 'random', icount, value });
      } else {
        value = (this.config.hostRead?.(port) ?? 0) >>> 0;
        this.#append({ kind: 'port', icount, port, value });
      }
      return value;
    },
    transmit: (packet, icount) => this.#output({ kind: 'packet', seq: this.#lastSeq, icount, packet }),
    disk: (req, icount) => this.#primaryDisk(req, icount),
  };

  #primaryDisk(req: DiskRequest, icount: number): void {
    const reqId = this.#nextReqId++;
    if (req.op === 'read') {
      this.#pendingReads.set(reqId, { block: req.block, count: req.count });
      this.#fx.disk.push({ op: 'read', reqId, block: req.block, count: req.count });
    } else {
      this.#output({ kind: 'write', seq: this.#lastSeq, icount, reqId, block: req.block, count: req.count, data: req.data ?? new Uint8Array(0) });
    }
  }

  /** Logs an entry if there is a backup to log for. */
  #append(e: NewEntry): void {
    if (this.#peer === 'none') return;
    const entry = { ...e, seq: ++this.#lastSeq } as LogEntry;
    const size = entryWireSize(entry);
    this.#log.push(entry);
    this.#logBytes += size;
    this.#bytesTotal += size;
    this.#lastEntryIcount = entry.icount;
    this.#sinceAppend = 0;
    if (entry.kind === 'progress') this.#maybeCheckpoint(entry.seq, entry.icount);
  }

  #output(h: Held): void {
    // While a joiner has not acknowledged its snapshot, nothing it could reproduce is safe yet.
    if (this.#peer === 'none' || (h.seq <= this.#acked && this.#peer !== 'joining')) this.#release(h);
    else this.#held.push(h);
  }

  #release(h: Held): void {
    this.#released++;
    if (h.kind === 'packet') this.#fx.outputs.push({ seq: h.seq, icount: h.icount, packet: h.packet } satisfies Output);
    else this.#fx.disk.push({ op: 'write', reqId: h.reqId, block: h.block, count: h.count, data: h.data, epoch: this.#epoch } satisfies DiskOp);
  }

  #releaseUpTo(seq: number): void {
    let n = 0;
    while (n < this.#held.length && this.#held[n]!.seq <= seq) this.#release(this.#held[n++]!);
    if (n > 0) this.#held.splice(0, n);
  }

  #stallReason(): string | undefined {
    if (this.#peer === 'none') return undefined;
    if (this.#logBytes > this.config.maxUnackedBytes) return `unacked log bytes ${this.#logBytes} > ${this.config.maxUnackedBytes}`;
    if (this.#held.length >= this.config.maxHeldOutputs) return `held outputs ${this.#held.length} >= ${this.config.maxHeldOutputs}`;
    const lag = (this.#m?.icount ?? 0) - this.#peerIcount;
    if (lag > this.#lagLimit) return `backup lags by ${lag} instructions > ${this.#lagLimit}`;
    return undefined;
  }

  /** Updates the stall state; true when the primary may execute. */
  #mayRun(): boolean {
    const why = this.#stallReason();
    if (why !== undefined && this.#stalled === undefined) this.#fx.events.push({ type: 'stalled', reason: why });
    if (why === undefined && this.#stalled !== undefined) this.#fx.events.push({ type: 'resumed' });
    this.#stalled = why;
    return why === undefined;
  }

  /** Delivers due events at the current boundary: the guest timer, queued client packets. */
  #deliverDue(): void {
    const m = this.#m!;
    const period = m.timerPeriodMs;
    if (period <= 0) this.#nextTimerAt = undefined;
    else if (this.#nextTimerAt === undefined) this.#nextTimerAt = this.#now + period;
    else if (this.#now >= this.#nextTimerAt) {
      m.raiseInterrupt(DEVICES.timerLine);
      this.#append({ kind: 'interrupt', icount: m.icount, vector: DEVICES.timerLine });
      this.#nextTimerAt = this.#now + period;
    }
    while (this.#inbox.length > 0 && m.nicRxReady) {
      const { packet, tag } = this.#inbox.shift()!;
      if (!m.deliverPacket(packet)) {
        this.#inbox.unshift({ packet, ...(tag !== undefined ? { tag } : {}) });
        break;
      }
      this.#append({ kind: 'nic', icount: m.icount, packet });
      this.#fx.events.push({ type: 'packet-delivered', ...(tag !== undefined ? { tag } : {}), seq: this.#lastSeq, icount: m.icount });
    }
  }

  #runPrimary(budget: number): void {
    if (!this.#live) return;
    const m = this.#m!;
    if (!this.#mayRun()) return;
    this.#deliverDue();
    const before = m.icount;
    const why = m.run(before + budget);
    if ((why === 'halt' || why === 'fault') && !this.#guestStopped) {
      this.#guestStopped = true;
      this.#fx.events.push({ type: 'guest-stopped', reason: why, ...(m.faultMessage ? { message: m.faultMessage } : {}) });
    }
    // Deliver what became deliverable (e.g. a packet waiting for the guest to arm its buffer).
    if (this.#inbox.length > 0) this.#deliverDue();
    // A progress entry lets the backup replay this far: after progressInstructions, and wherever
    // the guest stopped to wait (the backup reaches the same idle point: no lag, comparable
    // state hashes) or the primary must now wait for its backup (so it can catch up all the way).
    const stopped = m.waiting || m.halted || m.faulted || this.#stallReason() !== undefined;
    if (this.#peer !== 'none' && m.icount > this.#lastEntryIcount && (stopped || m.icount - this.#lastEntryIcount >= this.config.progressInstructions)) {
      this.#append({ kind: 'progress', icount: m.icount });
    }
    this.#mayRun();
  }

  #onPacket(packet: Uint8Array, tag: string | undefined): void {
    const ok = this.accepting();
    if (!ok.ok) {
      this.#fx.events.push({ type: 'packet-dropped', ...(tag !== undefined ? { tag } : {}), reason: ok.reason });
      return;
    }
    this.#inbox.push({ packet, ...(tag !== undefined ? { tag } : {}) });
    this.#deliverDue();
  }

  #onDiskReadDone(reqId: number, data: Uint8Array): void {
    if (this.#role !== 'primary' || !this.#live) return;
    if (!this.#pendingReads.has(reqId)) return;
    const m = this.#m!;
    this.#pendingReads.delete(reqId);
    m.completeDiskRead(data);
    this.#append({ kind: 'disk', icount: m.icount, reqId, data });
  }

  #onAck(epoch: number, seq: number, icount: number): void {
    if (this.#role !== 'primary' || this.#peer === 'none') return;
    if (epoch !== this.#epoch) {
      this.#fx.events.push({ type: 'stale', what: 'ack', epoch });
      return;
    }
    if (seq > this.#lastSeq) return; // acks for entries never created: ignore
    this.#heard();
    this.#silentFor = 0;
    if (this.#confirmSeq !== undefined && seq >= this.#confirmSeq) {
      this.#confirmSeq = undefined;
      this.#fx.events.push({ type: 'confirmed', seq });
    }
    this.#peerIcount = Math.max(this.#peerIcount, icount);
    this.#sampleReplay();
    if (this.#peer === 'joining') {
      this.#peer = 'connected';
      this.#releaseUpTo(this.#acked);
    }
    if (seq > this.#acked) {
      this.#acked = seq;
      this.#sinceAckProgress = 0;
      while (this.#log.length > 0 && this.#log.first()!.seq <= seq) this.#logBytes -= entryWireSize(this.#log.shift()!);
      if (this.#sendCursor < seq) this.#sendCursor = seq;
      this.#releaseUpTo(seq);
    }
    this.#mayRun();
  }

  /**
   * Primary, on an ack that reports progress: times the backup's execution
   * over host time (samples of at least RATE_SAMPLE_MS) and sizes the lag
   * limit from it. A sample that ends with the backup still behind by the
   * limit's floor or more measures its replay speed (it had work to do) and
   * moves the estimate either way; one that ends with the backup keeping up
   * only says it replays at least that fast: it can raise the estimate, not
   * lower it.
   */
  #sampleReplay(): void {
    const c = this.config;
    if (c.maxLagMs === 0) return;
    const now = this.#now;
    const from = this.#rateFrom;
    if (!from || now < from.ms || this.#peerIcount < from.icount) {
      this.#rateFrom = { ms: now, icount: this.#peerIcount };
      return;
    }
    const dt = now - from.ms;
    if (dt < RATE_SAMPLE_MS || this.#peerIcount === from.icount) return;
    const sample = (this.#peerIcount - from.icount) / dt;
    const busy = (this.#m?.icount ?? 0) - this.#peerIcount >= Math.min(c.minLagInstructions, c.maxLagInstructions);
    if (this.#replayRate === 0) this.#replayRate = sample;
    else if (busy) this.#replayRate = this.#replayRate * (1 - RATE_WEIGHT) + sample * RATE_WEIGHT;
    else this.#replayRate = Math.max(this.#replayRate, sample);
    this.#rateFrom = { ms: now, icount: this.#peerIcount };
    this.#lagLimit = Math.min(c.maxLagInstructions, Math.max(c.minLagInstructions, Math.round(this.#replayRate * c.maxLagMs)));
  }

  #onJoin(): void {
    if (this.#role !== 'primary' || !this.#live || this.#peer !== 'none') {
      this.#fx.events.push({ type: 'stale', what: 'join refused: not a live primary without a backup', epoch: this.#epoch });
      return;
    }
    this.#transferState();
  }

  /** Snapshot at the current boundary for a joiner; the log restarts after it. */
  #transferState(): void {
    const m = this.#m!;
    const state = encodeEnvelope(
      {
        v: 1,
        vmId: this.config.vmId,
        icount: m.icount,
        nextReqId: this.#nextReqId,
        pendingReads: [...this.#pendingReads].map(([id, r]) => [id, r.block, r.count]),
        lastClock: this.#lastClock,
      },
      m.snapshot(),
    );
    const frame: SnapshotFrame = { type: 'snapshot', epoch: this.#epoch, seq: this.#lastSeq, icount: m.icount, state };
    this.#fx.snapshot = frame;
    this.#peer = 'joining';
    this.#acked = this.#lastSeq;
    this.#sendCursor = this.#lastSeq;
    this.#log.clear();
    this.#logBytes = 0;
    this.#peerIcount = m.icount;
    this.#lastEntryIcount = m.icount;
    this.#rateFrom = undefined;
    this.#detector?.reset(this.#now);
    this.#silent = 0;
    this.#silentFor = 0;
    this.#confirmSeq = undefined;
    this.#sinceAppend = 0;
    this.#sinceAckProgress = 0;
    this.#linkUp = true;
    this.#fx.events.push({ type: 'joining', seq: frame.seq, icount: frame.icount, bytes: state.byteLength });
  }

  // =================================================================== backup

  #backupHost: DeviceHost = {
    read: (port, icount) => {
      const head = this.#log.first();
      const kind = port === DEVICES.clockPort ? 'clock' : port === DEVICES.randomPort ? 'random' : 'port';
      if (this.#role === 'stopped') return undefined;
      if (!head) {
        if (this.#draining) this.#diverge(`device read of port ${port} at ${icount} after the end of the log`);
        return undefined;
      }
      if (head.kind !== kind || head.icount !== icount || (head.kind === 'port' && head.port !== port)) {
        this.#diverge(`guest read port ${port} (${kind}) at icount ${icount}, log has ${describe(head)}`);
        return undefined; // the read is not executed: run() returns 'io-wait'
      }
      this.#consume(head);
      const v = (head as { value: number }).value;
      if (head.kind === 'clock') this.#lastClock = Math.max(this.#lastClock, v);
      return v;
    },
    transmit: () => {
      this.#suppressed++;
    },
    disk: (req) => {
      const reqId = this.#nextReqId++;
      if (req.op === 'read') this.#pendingReads.set(reqId, { block: req.block, count: req.count });
      else this.#written.set(req.block, { reqId, count: req.count, data: req.data ?? new Uint8Array(0) });
    },
  };

  /** The replay disagrees with the log: stop (data, not a throw). Callers return at once. */
  #diverge(why: string): void {
    this.#stop(`diverged: ${why}`);
  }

  get #stopped(): boolean {
    return this.#role === 'stopped';
  }

  #consume(e: LogEntry): void {
    this.#log.shift();
    this.#logBytes -= entryWireSize(e);
    this.#acked = e.seq;
  }

  #deliverEntry(e: LogEntry): void {
    const m = this.#m!;
    this.#consume(e);
    switch (e.kind) {
      case 'interrupt':
        m.raiseInterrupt(e.vector);
        break;
      case 'nic':
        if (!m.deliverPacket(e.packet)) this.#diverge(`nic entry ${e.seq} at ${e.icount} but the guest has no receive buffer armed`);
        break;
      case 'disk':
        if (!this.#pendingReads.delete(e.reqId)) {
          this.#diverge(`disk completion ${e.reqId} for no read in flight`);
          break;
        }
        m.completeDiskRead(e.data);
        break;
      case 'progress':
        this.#maybeCheckpoint(e.seq, e.icount);
        break;
      default:
        this.#diverge(`read entry ${describe(e)} at a boundary`);
    }
  }

  /** Replays held entries, never executing past the newest entry's icount. */
  #replay(budget: number): void {
    const m = this.#m!;
    const stopAt = m.icount + budget;
    const consumedBefore = this.#acked;
    for (;;) {
      while (!this.#stopped && this.#log.length > 0 && isBoundaryEntry(this.#log.first()!) && this.#log.first()!.icount === m.icount) this.#deliverEntry(this.#log.first()!);
      if (this.#stopped) return;
      const head = this.#log.first();
      if (!head) break;
      if (head.icount < m.icount) return this.#diverge(`backup at icount ${m.icount} is past ${describe(head)}`);
      let target = this.#log.last()!.icount;
      for (const e of this.#log) {
        if (isBoundaryEntry(e)) {
          target = Math.min(target, e.icount);
          break;
        }
      }
      // Going live, a trailing device read at the current boundary may be executed.
      if (this.#draining && target === m.icount && !isBoundaryEntry(head)) target = m.icount + 1;
      target = Math.min(target, stopAt);
      if (m.icount >= target) break;
      if (m.halted || m.faulted) {
        return this.#diverge(`guest ${m.halted ? 'halted' : 'faulted'} at ${m.icount} but the log continues with ${describe(head)}`);
      }
      const before = m.icount;
      const why = m.run(target);
      if (this.#stopped) return;
      if (why === 'wfi' && m.icount === before) {
        return this.#diverge(`guest waits at icount ${m.icount} but the log continues with ${describe(this.#log.first() ?? head)}`);
      }
      if (why === 'io-wait') break;
      if (why === 'halt' || why === 'fault') {
        if (this.#log.length > 0 && this.#log.first()!.icount > m.icount) return this.#diverge(`guest ${why} at ${m.icount} but the log continues with ${describe(this.#log.first()!)}`);
      }
      if (m.icount === before && this.#acked === consumedBefore && why !== 'limit') break;
    }
    if (this.#acked !== consumedBefore) this.#sendAck();
    if (this.#draining) this.#maybeFinishDrain();
  }

  #sendAck(): void {
    if (this.#role !== 'backup') return;
    this.#fx.ack = { type: 'ack', epoch: this.#epoch, seq: this.#lastSeq, icount: this.#m?.icount ?? 0 };
    const cp = this.#checkpoints[this.#checkpoints.length - 1];
    if (cp && cp.seq > this.#checkpointSent) {
      this.#checkpointSent = cp.seq;
      this.#fx.ack.checkpoint = { seq: cp.seq, icount: cp.icount, hash: cp.hash };
    }
  }

  /**
   * Primary: the backup's checkpoint against this node's at the same seq (if
   * still in the ring). Equal instruction counts with different hashes mean the
   * replicas diverged: reported as an event (the shell's invariant monitor).
   */
  #compareCheckpoint(theirs: { seq: number; icount: number; hash: string }): void {
    if (this.#role !== 'primary') return;
    const mine = this.#checkpoints.find((c) => c.seq === theirs.seq);
    if (!mine || mine.icount !== theirs.icount || mine.hash === theirs.hash) return;
    this.#fx.events.push({ type: 'checkpoint-mismatch', seq: mine.seq, icount: mine.icount, hash: mine.hash, backupHash: theirs.hash });
  }

  #onEntries(entries: LogEntry[]): void {
    if (this.#role !== 'backup' || this.#draining) return;
    this.#heard();
    for (const e of entries) {
      if (e.seq <= this.#lastSeq) continue; // a resend of something held
      if (e.seq !== this.#lastSeq + 1) {
        this.#fx.events.push({ type: 'gap', expected: this.#lastSeq + 1, got: e.seq });
        break;
      }
      if (e.icount < this.#lastEntryIcount) return this.#diverge(`entry ${e.seq} goes back to icount ${e.icount} from ${this.#lastEntryIcount}`);
      this.#log.push(e);
      const size = entryWireSize(e);
      this.#logBytes += size;
      this.#bytesTotal += size;
      this.#lastSeq = e.seq;
      this.#lastEntryIcount = e.icount;
    }
    this.#sendAck();
  }

  #onSnapshot(f: SnapshotFrame): void {
    if (this.#role !== 'joining') return;
    const { header, machine } = decodeEnvelope(f.state);
    const m = this.config.restore!(machine);
    if (m.icount !== f.icount || header.icount !== f.icount) {
      this.#stop(`snapshot icount ${f.icount} does not match the machine's ${m.icount}`);
      return;
    }
    this.#m = m;
    m.setHost(this.#backupHost);
    this.#role = 'backup';
    this.#peer = 'connected';
    this.#epoch = f.epoch;
    this.#lastSeq = f.seq;
    this.#acked = f.seq;
    this.#lastEntryIcount = f.icount;
    this.#nextReqId = header.nextReqId;
    this.#pendingReads = new Map(header.pendingReads.map(([id, block, count]) => [id, { block, count }]));
    this.#lastClock = header.lastClock;
    this.#silent = 0;
    this.#detector?.reset(this.#now);
    this.#fx.events.push({ type: 'installed', seq: f.seq, icount: f.icount, epoch: f.epoch });
    this.#sendAck();
  }

  #maybeFinishDrain(): void {
    if (this.#tas !== undefined || this.#log.length > 0) return;
    this.#fx.events.push({ type: 'drained', seq: this.#acked, icount: this.#m!.icount });
    this.#requestTas(this.#epoch + 1, 'go-live');
  }

  // =================================================================== both

  #onLinkUp(epoch: number, seq: number): void {
    if (this.#role === 'primary') {
      // Only a live primary streams: before it holds its epoch the backup could not follow it safely.
      if (this.#peer === 'none' || !this.#live) return;
      if (this.#peer === 'joining' && (epoch === 0 || seq < this.#acked)) {
        // The joiner reconnected without having installed the snapshot: send a fresh one.
        this.#transferState();
        return;
      }
      this.#linkUp = true;
      if (seq > this.#acked && seq <= this.#lastSeq) this.#onAck(this.#epoch, seq, this.#peerIcount);
      this.#sendCursor = this.#acked;
      if (this.#lastSeq > this.#acked) this.#fx.events.push({ type: 'resend', fromSeq: this.#acked + 1 });
    } else if (this.#role === 'backup' || this.#role === 'joining') {
      if (epoch < this.#epoch || epoch < 1) {
        this.#fx.events.push({ type: 'stale', what: 'hello', epoch });
        return;
      }
      if (this.#draining) return;
      if (this.#role === 'backup' && this.#epoch > 0 && epoch > this.#epoch) {
        // The primary took a newer epoch without this backup (it went on alone): our state is
        // not a prefix of its history, and adopting its epoch could let us win a later
        // test-and-set with stale state. Only a new join can make this node a backup again.
        this.#stop(`the primary moved on to epoch ${epoch} without this backup (epoch ${this.#epoch})`);
        return;
      }
      this.#linkUp = true;
      this.#heard(true);
      if (this.#role === 'backup') {
        this.#epoch = epoch;
        this.#peer = 'connected';
      }
      // A joiner learns its epoch from the snapshot; until then its hello says epoch 0.
      if (this.#role === 'backup') this.#sendAck();
    }
  }

  /**
   * `n` tick periods of host time passed since the last tick (more than one
   * after a stall of this process). Suspicion, which leads to action
   * (test-and-set), counts tick inputs: a starved node is slow to act. The
   * primary's claim to be live counts host time: a stalled node never claims.
   */
  #tick(n: number): void {
    const c = this.config;
    this.#detector?.tick(this.#now);
    if (this.#role === 'primary') {
      // A stalled primary delivers nothing either (timer ticks would only grow the log).
      if (this.#live && this.#mayRun()) this.#deliverDue();
      if (this.#peer === 'none' || !this.#live) return;
      this.#silent++;
      this.#silentFor += n;
      this.#sinceAppend++;
      // A joiner gets the bounded transfer window to take the snapshot and answer.
      const window = this.#peer === 'joining' ? c.transferTicks : c.suspectTicks;
      if (this.#peer !== 'suspected' && this.#silent >= window && this.#detects(window)) {
        this.#suspectBackup('silence');
      } else if (this.#confirmSeq === undefined && this.#peer !== 'suspected' && this.#silentFor >= window) {
        // Maybe deposed: not live until the backup acks an entry created from now on.
        this.#append({ kind: 'progress', icount: this.#m!.icount });
        this.#confirmSeq = this.#lastSeq;
        this.#fx.events.push({ type: 'unconfirmed', silentTicks: this.#silentFor, seq: this.#lastSeq });
      }
      if (this.#sendCursor > this.#acked) {
        this.#sinceAckProgress++;
        if (this.#sinceAckProgress >= c.resendTicks) {
          this.#sinceAckProgress = 0;
          this.#sendCursor = this.#acked;
          this.#fx.events.push({ type: 'resend', fromSeq: this.#acked + 1 });
        }
      } else this.#sinceAckProgress = 0;
      if (this.#sinceAppend >= c.heartbeatTicks && this.#logBytes <= c.maxUnackedBytes) {
        this.#append({ kind: 'progress', icount: this.#m!.icount });
      }
    } else {
      // A backup that never heard from a primary has nothing to take over: it waits.
      if (this.#role === 'backup' && this.#epoch === 0) return;
      this.#silent++;
      const window = this.#role === 'joining' ? c.transferTicks : c.suspectTicks;
      if (!this.#draining && this.#silent >= window && this.#detects(window)) this.#suspectPrimary('silence');
    }
  }

  /**
   * The peer was heard from (an ack, entries; `fresh`: a new stream's hello,
   * whose gap since the last message is a break, not a heartbeat's). Before
   * this node has any host time (no tick or run input yet) nothing is timed.
   */
  #heard(fresh = false): void {
    this.#silent = 0;
    if (!this.#detector || this.#now === 0) return;
    if (fresh) this.#detector.restart(this.#now);
    else this.#detector.heartbeat(this.#now);
  }

  /**
   * After `window` silent ticks: whether the adaptive detector agrees that
   * the silence is suspicious (φ over the threshold, or suspectMaxMs). The
   * state-transfer window is not adaptive; without a detector the ticks decide.
   */
  #detects(window: number): boolean {
    if (!this.#detector || window !== this.config.suspectTicks) return true;
    return this.#detector.suspect(this.#now);
  }

  /** The adaptive detector's state: the silence (ms) at which the peer would be suspected now, and the gaps it learned from. */
  suspicion(): { windowMs: number; gaps: number; meanGapMs: number; longestGapMs: number } | undefined {
    const d = this.#detector;
    if (!d) return undefined;
    const st = d.stats();
    return { windowMs: d.windowMs(), gaps: st.gaps, meanGapMs: Math.round(st.meanMs * 10) / 10, longestGapMs: st.longestMs };
  }

  /** Primary: the backup is suspected (silence, or the shell found it gone): ask test-and-set to go on alone. */
  #suspectBackup(cause: 'silence' | 'peer-lost'): void {
    this.#peer = 'suspected';
    this.#fx.events.push({ type: 'suspected', peer: 'backup', silentTicks: this.#silent, cause });
    this.#requestTas(this.#epoch + 1, 'alone');
  }

  /** Backup (or joiner): the primary is suspected: consume what is held, then ask test-and-set to go live. */
  #suspectPrimary(cause: 'silence' | 'peer-lost'): void {
    this.#fx.events.push({ type: 'suspected', peer: 'primary', silentTicks: this.#silent, cause });
    if (this.#role === 'joining') {
      this.#stop(cause === 'silence' ? 'the primary went silent before the state transfer finished' : 'the primary was lost before the state transfer finished');
      return;
    }
    this.#peer = 'suspected';
    this.#draining = true;
    this.#linkUp = false;
    // Consume everything held (runs on the next `run` inputs), then ask test-and-set.
    this.#replay(Number.MAX_SAFE_INTEGER);
  }

  #requestTas(epoch: number, purpose: TasPurpose): void {
    this.#tas = { epoch, purpose };
    this.#fx.tas = { epoch };
    this.#fx.events.push({ type: 'tas-requested', epoch });
  }

  #onTas(epoch: number, won: boolean, owner: string | undefined): void {
    const t = this.#tas;
    if (!t || t.epoch !== epoch) return;
    this.#tas = undefined;
    if (!won) {
      const who = owner ? ` (held by ${owner})` : '';
      this.#stop(
        t.purpose === 'start'
          ? `lost test-and-set for epoch ${epoch}${who}: another node is primary`
          : t.purpose === 'alone'
            ? `lost the backup and lost test-and-set for epoch ${epoch}${who}: the backup went live`
            : `lost test-and-set for epoch ${epoch}${who}: the primary is still live`,
      );
      return;
    }
    this.#epoch = epoch;
    const m = this.#m!;
    if (t.purpose === 'start') {
      this.#live = true;
    } else if (t.purpose === 'alone') {
      this.#goAlone();
    } else {
      // Go live: devices become real.
      this.#role = 'primary';
      this.#live = true;
      this.#draining = false;
      this.#peer = 'none';
      this.#silent = 0;
      this.#log.clear();
      this.#logBytes = 0;
      this.#sendCursor = this.#lastSeq;
      this.#nextTimerAt = undefined;
      m.setHost(this.#primaryHost);
      for (const [reqId, r] of this.#pendingReads) this.#fx.disk.push({ op: 'read', reqId, block: r.block, count: r.count });
      for (const [block, w] of this.#written) this.#fx.disk.push({ op: 'write', reqId: w.reqId, block, count: w.count, data: w.data, epoch });
      this.#written.clear();
    }
    this.#fx.events.push({ type: 'live', epoch, icount: m.icount });
  }

  #goAlone(): void {
    this.#peer = 'none';
    this.#confirmSeq = undefined;
    this.#silentFor = 0;
    this.#linkUp = false;
    this.#log.clear();
    this.#logBytes = 0;
    this.#acked = this.#lastSeq;
    this.#sendCursor = this.#lastSeq;
    this.#silent = 0;
    const held = this.#held;
    this.#held = [];
    for (const h of held) this.#release(h);
    if (this.#stalled !== undefined) {
      this.#stalled = undefined;
      this.#fx.events.push({ type: 'resumed' });
    }
    this.#fx.events.push({ type: 'alone', epoch: this.#epoch });
  }

  #stop(reason: string): void {
    if (this.#role === 'stopped') return;
    this.#role = 'stopped';
    this.#live = false;
    this.#reason = reason;
    this.#held = [];
    this.#inbox = [];
    this.#draining = false;
    this.#fx.events.push({ type: 'stopped', reason });
  }

  #maybeCheckpoint(seq: number, icount: number): void {
    const every = this.config.checkpointEvery;
    // A mixed seq, so that a guest's periodic entry pattern cannot keep every progress entry off the checkpoints.
    if (every === 0 || mix32(seq) % every !== 0) return;
    const cp = { seq, icount, hash: this.#m!.stateHash() };
    this.#checkpoints.push(cp);
    if (this.#checkpoints.length > CHECKPOINT_RING) this.#checkpoints.shift();
    this.#fx.events.push({ type: 'checkpoint', ...cp });
  }

  /** Hands new (or rewound) entries to the shell while a stream is up. */
  #flush(): void {
    if (this.#role !== 'primary' || this.#peer === 'none' || !this.#linkUp) return;
    if (this.#sendCursor >= this.#lastSeq) return;
    const from = this.#sendCursor - this.#acked; // index into #log
    for (let i = Math.max(0, from); i < this.#log.length; i++) this.#fx.entries.push(this.#log.at(i)!);
    this.#sendCursor = this.#lastSeq;
  }
}

/** Finalizer of murmur3: a well-mixed u32 of a seq (the same on every node). */
function mix32(n: number): number {
  let h = (n ^ Math.floor(n / 4294967296)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function describe(e: LogEntry): string {
  return `entry ${e.seq} ${e.kind}@${e.icount}`;
}
