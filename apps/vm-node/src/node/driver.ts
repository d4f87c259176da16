/**
 * The thin shell around the FT core (@mr/vmft-core FtReplica): it feeds the
 * core ticks, run slices, client packets, log frames and storage answers,
 * and carries out the effects in the order the core asks for (log entries
 * and snapshot first, then test-and-set, disk I/O, released outputs).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import { context, type Span } from '@opentelemetry/api';
import { Cpu } from '@mr/vmft-cpu';
import { FtReplica, type FtEvent, type FtInput, type FtStatus, type Machine, type Output } from '@mr/vmft-core';
import { encodeFrame, encodeFrames, entryWireSize, type AckFrame, type HelloFrame, type Frame, type LogEntry, type VmStatus } from '@mr/vmft-protocol';
import { getGuest } from '@mr/vmft-guests';
import { createError } from '@mr/errors';
import { ERR_STALE_EPOCH, ERR_NOT_HOLDER, ERR_STREAM_BUSY, ERR_PEER_NOT_ALLOWED, ERR_CHECK_UNAVAILABLE, notLiveError, type NotLive } from '../errors.ts';
import { LogSender, type LogSession, type LogSink } from '../log-channel.ts';
import { peerGone } from '../log-channel/peer-probe.ts';
import { StorageClient } from './storage-client.ts';
import { createArbiter, type Arbiter, type ArbiterConfig } from './arbiter.ts';
import { StoragePort } from './storage-port.ts';
import { joinPrimary } from './join.ts';
import { countsUnprotected, nodeMetrics, type NodeInvariant, type NodeMetrics, type Protection } from './metrics.ts';
import { KvRequests, type KvRequest, type KvAnswer } from './kv-requests.ts';
import { BackupTraces, FailoverTrace, nowMs } from './tracing.ts';

export { ERR_GUEST_REFUSED, ERR_REQUEST_TIMEOUT } from './kv-requests.ts';

export const ERR_NOT_BACKUP = createError<[string]>('FT_ERR_NOT_BACKUP', 'this node does not take a log stream: %s', 409, { retryable: false });
export const ERR_JOIN_REFUSED = createError<[string]>('FT_ERR_JOIN_REFUSED', 'join refused: %s', 409, { retryable: false });
export const ERR_NO_CLIENT_API = createError<[string]>('FT_ERR_NO_CLIENT_API', 'guest "%s" does not take kv client requests', 409, { retryable: false });

export interface VmNodeOptions {
  vmId: string;
  nodeId: string;
  /** Start role; a joining node is a backup with joinUrl. */
  role: 'primary' | 'backup';
  /** Join the running primary at this URL by state transfer (role backup). */
  joinUrl?: string | undefined;
  guest: string;
  /** The storage node: the virtual disk, and arbitration unless `arbiter` names etcd. */
  storageUrl: string;
  /** Who arbitrates epochs (default: the storage node). See arbiter.ts. */
  arbiter?: ArbiterConfig | undefined;
  /** The other node's URL (primary: where to stream the log; backup: who is live). */
  peerUrl?: string | undefined;
  /** The client token (MR_TOKEN). */
  token?: string | undefined;
  /** The peer credential (MR_PEER_TOKEN): node <-> node and node -> storage. */
  peerToken?: string | undefined;
  /**
   * The other nodes this node may talk to (base URLs): where it may join,
   * which joiners it streams to, which live hints it follows. The peer
   * credential goes to these and to storage only. Default: peerUrl and joinUrl.
   */
  peers?: readonly string[] | undefined;
  /** Tick period (default 20 ms). Failure suspicion takes suspectTicks ticks. */
  tickMs?: number;
  suspectTicks?: number;
  heartbeatTicks?: number;
  /**
   * A run slice that took the guest this many instructions past the last log
   * entry ends with a progress entry (default 2,000,000: a few ms of guest
   * time). Fewer entries cost less; the backup replays at most this far
   * behind the primary's newest entry, and a primary that must wait for its
   * backup logs one where it stopped.
   */
  progressInstructions?: number;
  /**
   * Release each output as soon as the guest produces it, without waiting for
   * the backup's acknowledgement. For measuring what the output rule costs
   * ONLY: it voids the no-lost-answer guarantee.
   */
  outputRule?: boolean;
  /**
   * BREAK THE RULE (drills only; `mr vm node` refuses it without --drill-unsafe):
   * go live and go on alone without asking storage for test-and-set, as if
   * every request were won. A partition then yields two live primaries.
   */
  testAndSet?: boolean;
  /**
   * BREAK THE RULE (drills only, as above): the kv guest applies a retried
   * request again instead of answering it from its session window (see
   * getGuest's `dedup`). Both nodes of a pair must agree on it.
   */
  dedup?: boolean;
  /** Server-side cap on one client request (default 10 s). */
  requestTimeoutMs?: number;
  log: FastifyBaseLogger;
  registry: Registry;
}

export { notLiveError, type NotLive } from '../errors.ts';

/** Backup: the log stream taken (acks go back on it). */
interface StreamSession {
  send(ack: AckFrame): void;
  epoch: number;
  nodeId: string;
  lastFrameAt: number;
}

export class VmDriver {
  readonly opts: VmNodeOptions & { tickMs: number; outputRule: boolean; testAndSet: boolean; dedup: boolean; requestTimeoutMs: number };
  readonly core: FtReplica;
  readonly storage: StorageClient;
  /** Test-and-set and the epoch flag: the storage client itself, or etcd (which fences the storage node's disk). */
  readonly arbiter: Arbiter;
  readonly metrics: NodeMetrics;
  selfUrl = '';
  /** URL of the other node (for 503 hints and status). */
  peerUrl: string | undefined;
  #sender: LogSender | undefined;
  #session: StreamSession | undefined;
  /** Origins of the configured peers (the allow-list). */
  readonly peers: ReadonlySet<string>;
  readonly #requests: KvRequests;
  #tick: NodeJS.Timeout | undefined;
  #ticking = false;
  #scheduled = false;
  #closed = false;
  readonly #storagePort: StoragePort;
  #stoppedReason: string | undefined;
  /** Set when the core threw from `step` (a broken invariant): the node serves nothing from then on. */
  #failed: string | undefined;
  /** Host time of the last tick period counted (advances by whole periods). */
  #lastTickAt = 0;
  /** Called once when the node fails (app.ts closes the log streams it receives). */
  onFail: ((reason: string) => void) | undefined;
  #hadStream = false;
  #wasBackup: boolean;
  /** Host time up to which unprotected time was counted (ft_unprotected_seconds_total). */
  #protectionAt = 0;
  /** When this node last heard its peer (wall ms): the last log frames on a backup, the last ack on a primary. */
  #lastHeardAt = 0;
  /** The failover under way (its own trace), until the VM is protected again. */
  #failover: FailoverTrace | undefined;
  readonly #backupTraces: BackupTraces;

  constructor(opts: VmNodeOptions, startEpoch = 1) {
    this.opts = { tickMs: 20, outputRule: true, testAndSet: true, dedup: true, requestTimeoutMs: 10_000, ...opts };
    const broken = brokenRules(this.opts);
    if (broken.length > 0) {
      opts.log.warn({ brokenRules: broken }, `DRILL-UNSAFE: rules switched off on purpose (${broken.join(', ')}): this node gives up the guarantees they make; never run it outside a drill`);
    }
    this.peerUrl = opts.peerUrl ? new URL(opts.peerUrl).origin : opts.joinUrl ? new URL(opts.joinUrl).origin : undefined;
    this.peers = new Set([...(opts.peers ?? []), ...(opts.peerUrl ? [opts.peerUrl] : []), ...(opts.joinUrl ? [opts.joinUrl] : [])].map((u) => new URL(u).origin));
    const program = getGuest(opts.guest, { dedup: this.opts.dedup });
    const machine = opts.joinUrl ? undefined : this.#hook(new Cpu(program));
    this.storage = new StorageClient({ url: opts.storageUrl, vmId: opts.vmId, nodeId: opts.nodeId, token: opts.peerToken });
    this.arbiter = createArbiter(opts.arbiter ?? { kind: 'storage' }, { vmId: opts.vmId, nodeId: opts.nodeId, storage: this.storage });
    this.#storagePort = new StoragePort({
      storage: this.storage,
      arbiter: this.arbiter,
      log: opts.log,
      drive: (input) => this.drive(input),
      schedule: () => this.schedule(),
      closed: () => this.#closed,
    });
    this.#wasBackup = opts.role === 'backup';
    this.#backupTraces = new BackupTraces({ vmId: opts.vmId, nodeId: opts.nodeId });
    this.core = new FtReplica({
      vmId: opts.vmId,
      nodeId: opts.nodeId,
      role: opts.role,
      ...(machine ? { machine } : {}),
      join: !!opts.joinUrl,
      restore: (state) => {
        const cpu = new Cpu(program);
        cpu.restore(state);
        return this.#hook(cpu);
      },
      random: () => randomBytes(4).readUInt32LE(0),
      withBackup: opts.role === 'primary' ? !!opts.peerUrl : true,
      startEpoch,
      ...(opts.suspectTicks ? { suspectTicks: opts.suspectTicks } : {}),
      ...(opts.heartbeatTicks ? { heartbeatTicks: opts.heartbeatTicks } : {}),
      progressInstructions: opts.progressInstructions ?? 2_000_000,
      // A run slice of 1 M instructions (2 ms of guest time with compiled blocks): the per-slice cost
      // (a turn of the event loop, a step of the core) stays small; a kv guest waits long before that.
      sliceInstructions: 1_000_000,
    });
    // Scrapes count unseen time first, like status(): ft_live never says 1 for a node that may have been deposed.
    this.metrics = nodeMetrics(
      opts.registry,
      () => {
        this.catchUp();
        return this.status();
      },
      () => this.protection(),
      () => this.core.lagLimit(),
      () => this.core.suspicion(),
    );
    this.#requests = new KvRequests({ requestTimeoutMs: this.opts.requestTimeoutMs, metrics: this.metrics, log: opts.log });
  }

  /**
   * With the output rule off, answer a client the moment the guest transmits
   * (the later release finds nothing waiting). The machine is otherwise
   * untouched: the core still logs and holds as usual.
   */
  #hook(cpu: Cpu): Machine {
    if (this.opts.outputRule) return cpu;
    const setHost = cpu.setHost.bind(cpu);
    cpu.setHost = (host) =>
      setHost({
        ...host,
        transmit: (packet, icount) => {
          if (this.core?.role === 'primary' && this.core.live) {
            // The output goes out now: a breach of the output rule whenever a backup still lacks entries.
            const l = this.core.link();
            if (l.peer !== 'none' && l.sent > l.acked) this.#violated('output-released-before-ack', { seq: l.sent, acked: l.acked, icount });
            this.#requests.answer(packet, false);
          }
          host.transmit(packet, icount);
        },
      });
    return cpu;
  }

  get log(): FastifyBaseLogger {
    return this.opts.log;
  }

  // ------------------------------------------------------------------ loop

  /**
   * Feeds one input and carries out the effects. Never re-entered. Time is
   * counted first: if tick periods passed unseen (this process was stopped or
   * starved), the core hears about them before the input, so that a message
   * that waited in a socket during a stall is judged after the silence it
   * ended. A throw from `step` is a broken invariant: the node fails (stops
   * serving for good, reports why) instead of serving from a half-stepped core.
   */
  drive(input: FtInput): void {
    if (this.#closed || this.#failed !== undefined) return;
    try {
      if (input.type !== 'tick') this.#catchUp();
      this.core.step(input);
    } catch (err) {
      this.#fail(err as Error, input.type);
      return;
    }
    const fx = this.core.ready();
    // Logged packets first, so that a sampled request's trace frame can precede its entry.
    const at = nowMs();
    for (const ev of fx.events) {
      if (ev.type === 'packet-delivered') this.#requests.delivered(ev.tag, ev.seq, ev.icount, this.core.peerState !== 'none');
      else this.#traceEvent(ev, at);
    }
    if (fx.snapshot && this.#sender) {
      const bytes = encodeFrame(fx.snapshot);
      this.#sender.send(bytes);
      this.metrics.logBytes.inc({ direction: 'sent' }, bytes.byteLength);
    }
    if (fx.entries.length > 0 && this.#sender) {
      // One write for the batch (a sampled request's trace frame goes just before its entry).
      const frames: Frame[] = [];
      for (const e of fx.entries) {
        const tf = e.kind === 'nic' ? this.#requests.traceFrame(e.seq) : undefined;
        if (tf) frames.push(tf);
        frames.push({ type: 'entry', entry: e });
        this.metrics.logEntries.inc({ direction: 'sent', kind: e.kind });
      }
      const bytes = encodeFrames(frames);
      this.#sender.send(bytes);
      this.metrics.logBytes.inc({ direction: 'sent' }, bytes.byteLength);
    }
    if (fx.ack) this.#sendAck(fx.ack);
    if (fx.tas) {
      const epoch = fx.tas.epoch;
      const f = this.#failover;
      const ask = () => (this.opts.testAndSet ? this.#storagePort.tas(epoch) : this.#fakeTas(epoch));
      // The test-and-set call of a failover is part of its arbitrate stage.
      if (f && !f.ended) context.with(f.context(), ask);
      else ask();
    }
    for (const d of fx.disk) this.#storagePort.disk(d);
    for (const o of fx.outputs) this.#release(o);
    for (const ev of fx.events) this.#event(ev);
    this.core.advance();
    if (this.#backupTraces.size > 0) this.#backupTraces.replayed(this.core.replayedSeq, nowMs());
  }

  /** Backup: acks of one turn of the loop leave as one, at its end (each ack covers the ones before; a checkpoint is kept). */
  #ackOut: { ack: AckFrame; session: StreamSession } | undefined;
  #sendAck(ack: AckFrame): void {
    const session = this.#session;
    if (!session) return;
    const prev = this.#ackOut;
    if (prev && prev.session === session && prev.ack.epoch === ack.epoch) {
      prev.ack = ack.checkpoint || !prev.ack.checkpoint ? ack : { ...ack, checkpoint: prev.ack.checkpoint };
      return;
    }
    if (prev && this.#session === prev.session) prev.session.send(prev.ack);
    const out = { ack, session };
    this.#ackOut = out;
    queueMicrotask(() => {
      if (this.#ackOut !== out) return;
      this.#ackOut = undefined;
      if (this.#session === session) session.send(out.ack);
    });
  }

  /** Traces of core events: a failover starts at suspicion and moves through its stages. */
  #traceEvent(ev: FtEvent, at: number): void {
    if (ev.type === 'suspected') {
      const role = this.core.role;
      const kind = ev.peer === 'primary' && role === 'backup' ? 'takeover' : ev.peer === 'backup' && role === 'primary' ? 'alone' : undefined;
      if (!kind) return;
      this.#failover?.fail('a new failover started', at);
      this.#failover = new FailoverTrace({
        kind,
        vmId: this.opts.vmId,
        nodeId: this.opts.nodeId,
        epoch: this.core.epoch,
        lastHeardAt: this.#lastHeardAt || at,
        suspectedAt: at,
        silentTicks: ev.silentTicks,
      });
      return;
    }
    if (ev.type === 'alone') this.#requests.dropUnacked();
    if (ev.type === 'live' && this.#wasBackup) this.#backupTraces.clear();
    const f = this.#failover;
    if (!f || f.ended) return;
    f.event(ev, at);
    if (f.ended) this.#failoverEnded(f);
  }

  #failoverEnded(f: FailoverTrace): void {
    const total = Math.round((f.stages.at(-1)?.endMs ?? f.startedAt) - f.startedAt);
    this.log.info({ kind: f.kind, stagesMs: f.durations(), totalMs: total, traceId: f.root.spanContext().traceId }, `failover trace ended: ${total} ms`);
  }

  /** The backup acknowledged (primary): re-protection after a failover. */
  #traceAck(backup: string): void {
    this.#lastHeardAt = nowMs();
    const f = this.#failover;
    if (f && f.stage === 'reprotect' && this.core.peerState === 'connected') {
      f.protectedAgain(this.#lastHeardAt, backup);
      this.#failoverEnded(f);
      this.#failover = undefined;
    }
  }

  /** Runs the machine in slices on the event loop while it has work. */
  schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#runSlice();
    });
  }

  #runSlice(): void {
    if (this.#closed) return;
    const before = this.core.icount;
    this.drive({ type: 'run', nowMs: Date.now() });
    if (this.#failover?.stage === 'go_live' && this.core.live) this.#failover.served(nowMs());
    const m = this.core.machine;
    if (!m || this.core.icount === before) return;
    if (this.core.role === 'primary' && (m.waiting || m.halted || m.faulted)) return;
    this.schedule();
  }

  #startTicking(): void {
    if (this.#ticking || this.#closed) return;
    this.#ticking = true;
    this.#lastTickAt = Date.now();
    this.#tick = setInterval(() => {
      this.#onTick();
      this.schedule();
    }, this.opts.tickMs);
  }

  /**
   * Tick periods that passed since the last one counted, and marks them
   * counted: at least one for a regular tick; 0 unless a tick is overdue
   * (two periods or more) otherwise.
   */
  #periods(regular: boolean): number {
    if (!this.#ticking) return 0;
    const periods = Math.floor((Date.now() - this.#lastTickAt) / this.opts.tickMs);
    if (!regular && periods < 2) return 0;
    const ticks = Math.max(1, periods);
    this.#lastTickAt += ticks * this.opts.tickMs;
    return ticks;
  }

  /** A regular tick (from the interval timer). */
  #onTick(): void {
    this.drive({ type: 'tick', nowMs: Date.now(), ticks: this.#periods(true) });
    this.#countProtection(Date.now());
  }

  /** Adds the time since the last call to ft_unprotected_seconds_total when this node counts it (see countsUnprotected). */
  #countProtection(now: number): void {
    const ms = this.#protectionAt === 0 ? 0 : now - this.#protectionAt;
    this.#protectionAt = now;
    if (ms > 0 && this.#failed === undefined && countsUnprotected(this.protection())) this.metrics.unprotectedSeconds.inc(ms / 1000);
  }

  /** What ft_protected and the unprotected time are judged from (a failed node protects nothing). */
  protection(): Protection {
    const l = this.core.link();
    if (this.#failed !== undefined) return { role: 'stopped', live: false, peer: l.peer, acked: l.acked };
    return { role: this.core.role, live: this.core.live, peer: l.peer, acked: l.acked };
  }

  /** An invariant monitor moved: count it and say so loudly (see NODE_INVARIANTS). */
  #violated(invariant: NodeInvariant, detail: Record<string, unknown>): void {
    this.metrics.invariants.inc({ invariant });
    this.log.error({ invariant, ...detail }, `invariant violated: ${invariant}`);
  }

  /** Inside drive(): tells the core about overdue tick periods before the input. */
  #catchUp(): void {
    const ticks = this.#periods(false);
    if (ticks > 0) this.core.step({ type: 'tick', nowMs: Date.now(), ticks });
  }

  /** Counts time that passed unseen (call before answering from the core's state). */
  catchUp(): void {
    if (this.#closed || this.#failed !== undefined) return;
    const ticks = this.#periods(false);
    if (ticks > 0) this.drive({ type: 'tick', nowMs: Date.now(), ticks });
  }

  #fail(err: Error, input: string): void {
    const code = (err as { code?: string }).code;
    this.#failed = `the FT core failed a step (${input}): ${code ? `${code}: ` : ''}${err.message}`;
    this.log.fatal({ err, input }, `node stopped serving: ${this.#failed}`);
    if (this.#tick) clearInterval(this.#tick);
    this.#tick = undefined;
    void this.#sender?.close();
    this.#sender = undefined;
    this.#session = undefined;
    this.#requests.rejectAll(() => notLiveError(this.notLive()!));
    this.#failover?.fail(this.#failed, nowMs());
    this.onFail?.(this.#failed);
  }

  /** Why this node failed (a throw from the core), if it did. */
  get failed(): string | undefined {
    return this.#failed;
  }

  // ------------------------------------------------------------------ start

  /** Starts the node once its server listens at `selfUrl`. */
  async start(selfUrl: string): Promise<void> {
    this.selfUrl = selfUrl;
    this.sink.selfUrl = selfUrl;
    if (this.opts.role === 'primary') {
      // Effects of the constructor (test-and-set for the start epoch).
      // Effects of the constructor (test-and-set for the start epoch); the log
      // stream opens once the epoch is won (its hello carries the epoch).
      this.drive({ type: 'tick', nowMs: Date.now() });
      this.#startTicking();
    } else if (this.opts.joinUrl) {
      await this.#join(this.opts.joinUrl);
    }
    // A plain backup starts counting silence only once a primary has streamed to it:
    // before that there is no one to take over from.
  }

  /** Whether `url` is one of the configured peers (the only hosts the peer credential goes to). */
  allowedPeer(url: string): boolean {
    try {
      return this.peers.has(new URL(url).origin);
    } catch {
      return false;
    }
  }

  async #join(url: string): Promise<void> {
    try {
      await joinPrimary({
        url,
        vmId: this.opts.vmId,
        nodeId: this.opts.nodeId,
        selfUrl: this.selfUrl,
        peerToken: this.opts.peerToken,
        allowed: (u) => this.allowedPeer(u),
        closed: () => this.#closed,
        log: this.log,
      });
    } catch (err) {
      this.#stoppedReason = `join failed: ${(err as Error).message}`;
      throw err;
    }
    this.#startTicking();
  }

  // ------------------------------------------------------------------ primary: log stream

  #connect(url: string, join: boolean): void {
    void this.#sender?.close();
    let first = join;
    let wasUp = false;
    const sender: LogSender = new LogSender({
      url,
      vmId: this.opts.vmId,
      hello: () => this.core.hello(),
      selfUrl: this.selfUrl,
      token: this.opts.peerToken,
      log: this.log,
      onHello: (h: HelloFrame) => {
        if (this.#sender !== sender) return;
        this.metrics.streams.inc();
        this.#lastHeardAt = nowMs();
        if (first) {
          first = false;
          this.log.info({ backup: url, node: h.nodeId }, 'joining backup connected: sending the snapshot');
          this.drive({ type: 'join' });
        } else {
          this.drive({ type: 'link-up', epoch: h.epoch, seq: h.seq });
        }
        this.schedule();
      },
      onAck: (a) => {
        if (this.#sender !== sender) return;
        // Before the core releases what the ack allows: the ack stage of a request ends before its release stage.
        const current = a.epoch === this.core.epoch;
        if (current) this.#requests.acked(a.seq);
        this.drive({ type: 'ack', epoch: a.epoch, seq: a.seq, icount: a.icount, checkpoint: a.checkpoint, nowMs: Date.now() });
        if (current) this.#traceAck(url);
        this.schedule();
      },
      onPeerUrl: (peer) => {
        if (this.#sender === sender) this.peerUrl = peer;
      },
      onState: (s, detail) => {
        if (this.#sender !== sender) return;
        if (s === 'connected') wasUp = true;
        if (s === 'disconnected') {
          this.log.debug({ backup: url, why: detail }, 'log stream down');
          this.drive({ type: 'link-down' });
          // A stream that was up broke: if the backup's process is gone, go on alone now.
          if (wasUp) this.#probePeer(this.peerUrl ?? url, () => this.#sender === sender && !sender.up);
          wasUp = false;
        }
      },
    });
    this.#sender = sender;
    this.peerUrl = new URL(url).origin;
    sender.start();
  }

  /** POST /v1/vms/:id/join on the primary: a new backup at `url` asks for state transfer. */
  /** Throws FT_ERR_PEER_NOT_ALLOWED (and counts it) unless `url` is a configured peer. */
  checkJoiner(nodeId: string, url: string): void {
    if (this.allowedPeer(url)) return;
    this.metrics.refused.inc({ what: 'join' });
    this.log.warn({ node: nodeId, url }, 'join refused: not a configured peer');
    throw ERR_PEER_NOT_ALLOWED(url);
  }

  join(nodeId: string, url: string): { epoch: number; icount: number } {
    this.checkJoiner(nodeId, url);
    const s = this.core.status();
    if (this.core.role !== 'primary' || !this.core.live) throw ERR_JOIN_REFUSED(`node ${this.opts.nodeId} is not the live primary (role ${s.role})`);
    if (s.peer.state !== 'none') throw ERR_JOIN_REFUSED(`the primary already has a backup (${s.peer.state}${this.peerUrl ? ` at ${this.peerUrl}` : ''})`);
    if (nodeId === this.opts.nodeId) throw ERR_JOIN_REFUSED(`node id ${nodeId} is the primary's own`);
    this.log.info({ node: nodeId, url }, 'backup asks to join');
    this.#connect(url, true);
    return { epoch: s.epoch, icount: s.icount };
  }

  // ------------------------------------------------------------------ backup: log stream

  /** Refusals that need no storage check (also re-checked after it). */
  #refuseStream(hello: HelloFrame): void {
    if (this.#failed !== undefined) throw ERR_NOT_BACKUP(`node ${this.opts.nodeId} stopped: ${this.#failed}`);
    const role = this.core.role;
    if (role === 'primary') throw ERR_NOT_BACKUP(`node ${this.opts.nodeId} is the live primary (epoch ${this.core.epoch})`);
    if (role === 'stopped') throw ERR_NOT_BACKUP(`node ${this.opts.nodeId} stopped: ${this.core.reason ?? ''}`);
    if (hello.epoch < this.core.epoch) throw ERR_STALE_EPOCH(hello.epoch, this.core.epoch, 'a newer primary');
  }

  /**
   * Takes a log stream only from the node that holds the hello's epoch at the
   * storage node (asked now, not trusted from the hello), and lets it
   * supersede the live stream only with a newer epoch (or when the live one
   * went quiet for half the suspicion window: a reconnect of its primary).
   */
  async #openStream(hello: HelloFrame, peerUrl: string | undefined, send: (ack: AckFrame) => void): Promise<LogSession> {
    this.#refuseStream(hello);
    let flag;
    try {
      flag = await this.arbiter.flag();
    } catch (err) {
      throw ERR_CHECK_UNAVAILABLE((err as Error).message);
    }
    if (flag.owner !== hello.nodeId || flag.epoch !== hello.epoch) {
      this.metrics.refused.inc({ what: 'stream-not-holder' });
      this.log.warn({ node: hello.nodeId, epoch: hello.epoch, storageEpoch: flag.epoch, owner: flag.owner }, 'log stream refused: the sender does not hold its epoch at storage');
      throw ERR_NOT_HOLDER(hello.nodeId, hello.epoch, flag.epoch, flag.owner);
    }
    this.#refuseStream(hello);
    const cur = this.#session;
    const quietMs = (this.core.config.suspectTicks * this.opts.tickMs) / 2;
    if (cur && hello.epoch <= cur.epoch && Date.now() - cur.lastFrameAt < quietMs) {
      this.metrics.refused.inc({ what: 'stream-busy' });
      this.log.warn({ node: hello.nodeId, epoch: hello.epoch, live: cur.nodeId }, 'log stream refused: the live stream is up');
      throw ERR_STREAM_BUSY(cur.epoch, cur.nodeId);
    }
    if (peerUrl) this.peerUrl = new URL(peerUrl).origin;
    const session = { send, epoch: hello.epoch, nodeId: hello.nodeId, lastFrameAt: Date.now() };
    this.#session = session;
    this.#hadStream = true;
    this.#lastHeardAt = nowMs();
    this.metrics.streams.inc();
    this.drive({ type: 'link-up', epoch: hello.epoch, seq: hello.seq });
    this.#startTicking();
    return {
      heldSeq: this.core.hello().seq,
      frames: (frames: Frame[]) => {
        if (this.#session !== session) return;
        session.lastFrameAt = Date.now();
        const arrived = nowMs();
        this.#lastHeardAt = arrived;
        const entries = [];
        let bytes = 0;
        for (const f of frames) {
          if (f.type === 'trace') {
            bytes += encodeFrame(f).byteLength;
            this.#backupTraces.frame(f, arrived);
          } else if (f.type === 'entry') {
            entries.push(f.entry);
            bytes += entryWireSize(f.entry);
            this.metrics.logEntries.inc({ direction: 'received', kind: f.entry.kind });
          } else if (f.type === 'snapshot') {
            bytes += encodeFrame(f).byteLength;
            if (entries.length) this.#driveEntries(entries.splice(0));
            this.log.info({ icount: f.icount, seq: f.seq, bytes: f.state.byteLength }, 'snapshot received');
            this.drive({ type: 'snapshot', frame: f });
          }
        }
        if (bytes) this.metrics.logBytes.inc({ direction: 'received' }, bytes);
        if (entries.length) this.#driveEntries(entries);
        // Replay what came now (a slice at most): the receipt ack and the replay's leave as one.
        if (!this.#scheduled) this.#runSlice();
        else this.schedule();
      },
      closed: (reason: string) => {
        if (this.#session !== session) return;
        this.#session = undefined;
        this.log.debug({ reason }, 'log stream closed');
        this.drive({ type: 'link-down' });
        // If the primary's process is gone (kill -9, a crash), take over now rather than after the silence window.
        if (this.peerUrl) this.#probePeer(this.peerUrl, () => this.#session === undefined);
      },
    };
  }

  /**
   * After a log stream broke: asks whether the peer's process is gone (its
   * address refuses connections) and, if so and `still()` holds (no new
   * stream meanwhile), tells the core (`peer-lost`), which suspects the peer
   * at once. A stalled or unreachable peer is left to the silence window.
   */
  #probePeer(url: string, still: () => boolean): void {
    const windowMs = this.core.config.suspectTicks * this.opts.tickMs;
    // A dying process may close its connections a moment before its listening socket:
    // ask again a few times (a live peer reconnects meanwhile, which ends the probing).
    void (async () => {
      for (const delayMs of [0, 20, 50, 100]) {
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
        if (this.#closed || this.#failed !== undefined || !still()) return;
        if (!(await peerGone(url, Math.min(windowMs, 1000)))) continue;
        if (this.#closed || this.#failed !== undefined || !still()) return;
        this.log.warn({ peer: url }, 'log stream broke and the peer refuses connections: its process is gone');
        this.drive({ type: 'peer-lost' });
        this.schedule();
        return;
      }
    })();
  }

  /** Backup: hands received entries to the core (which buffers them and acks); traced entries get their receive and ack spans. */
  #driveEntries(entries: LogEntry[]): void {
    const handedAt = nowMs();
    this.drive({ type: 'entries', entries, nowMs: Date.now() });
    if (this.#backupTraces.size > 0) this.#backupTraces.buffered(entries, handedAt, nowMs());
  }

  readonly sink: LogSink = {
    nodeId: '',
    open: (hello, peerUrl, send) => this.#openStream(hello, peerUrl, send),
  };

  // ------------------------------------------------------------------ storage

  // ------------------------------------------------------------------ outputs

  /** No test-and-set (a drill broke the rule): every request counts as won, without asking storage. */
  #fakeTas(epoch: number): void {
    this.log.warn({ epoch }, 'DRILL-UNSAFE: test-and-set switched off: taking the epoch without asking storage');
    setImmediate(() => {
      if (this.#closed) return;
      this.drive({ type: 'tas-result', epoch, won: true, owner: this.opts.nodeId });
      this.schedule();
    });
  }

  #release(o: Output): void {
    this.metrics.released.inc();
    const l = this.core.link();
    if (l.peer !== 'none' && o.seq > l.acked) this.#violated('output-released-before-ack', { seq: o.seq, acked: l.acked, icount: o.icount });
    this.#requests.answer(o.packet, true);
  }

  // ------------------------------------------------------------------ events

  #event(ev: FtEvent): void {
    switch (ev.type) {
      case 'packet-delivered':
        break; // handled first, in drive()
      case 'packet-dropped':
        this.#requests.dropped(ev.tag, () => notLiveError(this.notLive() ?? { reason: ev.reason, role: this.core.role, kind: 'backpressure' }));
        break;
      case 'live':
        this.log.warn({ epoch: ev.epoch, icount: ev.icount, wasBackup: this.#wasBackup }, this.#wasBackup ? 'backup went live: now the primary' : 'primary is live');
        if (this.#wasBackup) {
          this.metrics.failovers.inc({ kind: 'takeover' });
          this.#wasBackup = false;
          this.#session = undefined;
        } else if (this.opts.peerUrl && !this.#sender && this.core.status().peer.state !== 'none') {
          this.#connect(this.opts.peerUrl, false);
        }
        this.schedule();
        break;
      case 'alone':
        this.metrics.failovers.inc({ kind: 'alone' });
        this.log.warn({ epoch: ev.epoch, backup: this.peerUrl }, 'lost the backup and won test-and-set: going on alone (unprotected until a backup joins)');
        void this.#sender?.close();
        this.#sender = undefined;
        break;
      case 'stopped':
        this.#stoppedReason = ev.reason;
        this.log.warn({ reason: ev.reason }, `node stopped serving: ${ev.reason}`);
        void this.#sender?.close();
        this.#sender = undefined;
        this.#requests.rejectAll(() => notLiveError(this.notLive()!));
        break;
      case 'unconfirmed':
        this.log.warn({ silentTicks: ev.silentTicks, seq: ev.seq }, 'the backup was silent for the suspicion window (was this process stalled?): not live until it acknowledges a new entry');
        break;
      case 'confirmed':
        this.log.info({ seq: ev.seq }, 'the backup acknowledged a new entry: live again');
        break;
      case 'suspected':
        this.log.warn({ peer: ev.peer, silentTicks: ev.silentTicks, cause: ev.cause }, ev.cause === 'peer-lost' ? `${ev.peer} lost (its stream broke, its address refuses)` : `${ev.peer} went silent`);
        break;
      case 'tas-requested':
        this.log.info({ epoch: ev.epoch }, 'asking storage for test-and-set');
        break;
      case 'drained':
        this.log.info({ seq: ev.seq, icount: ev.icount }, 'backup consumed every log entry it holds');
        break;
      case 'joining':
        this.log.info({ seq: ev.seq, icount: ev.icount, bytes: ev.bytes }, 'snapshot taken for a joining backup');
        break;
      case 'installed':
        this.log.info({ seq: ev.seq, icount: ev.icount, epoch: ev.epoch }, 'snapshot installed: backing up the primary');
        this.schedule();
        break;
      case 'gap':
      case 'stale':
      case 'stalled':
        this.log.debug({ ev }, `ft ${ev.type}`);
        break;
      case 'checkpoint-mismatch':
        this.#violated('state-hash-mismatch', { seq: ev.seq, icount: ev.icount, hash: ev.hash, backupHash: ev.backupHash });
        break;
      case 'guest-stopped':
        this.log.error({ reason: ev.reason, message: ev.message }, 'the guest stopped');
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ clients

  /** Why this node does not serve clients (undefined when it does), and who does. */
  notLive(): NotLive | undefined {
    if (this.#failed !== undefined) return { kind: 'stopped', role: 'stopped', reason: `stopped: ${this.#failed}`, live: this.peerUrl };
    const role = this.core.role;
    if (role === 'stopped') {
      return { role, kind: 'stopped', reason: `stopped: ${this.core.reason ?? this.#stoppedReason ?? 'unknown'}`, live: this.peerUrl };
    }
    if (this.#stoppedReason && role === 'joining') return { role, kind: 'stopped', reason: this.#stoppedReason, live: this.peerUrl };
    if (role === 'backup' || role === 'joining') return { role, kind: 'not-primary', reason: `this node is the ${role}`, live: this.peerUrl };
    if (!this.core.live) {
      const reason = this.core.mayBeDeposed
        ? 'the backup was silent for longer than the suspicion window: this primary may have been deposed (not live until the backup acknowledges it again or storage confirms its epoch)'
        : 'the primary is not live yet (waiting for test-and-set)';
      return { role, kind: 'not-primary', reason, live: undefined };
    }
    return undefined;
  }

  /** A client request: resolves with the guest's answer once the output rule allows. */
  request(req: KvRequest, span?: Span, receivedAt?: number): Promise<KvAnswer> {
    if (this.opts.guest !== 'kv') return Promise.reject(ERR_NO_CLIENT_API(this.opts.guest));
    this.catchUp();
    const nl = this.notLive();
    if (nl) return Promise.reject(notLiveError(nl));
    const acc = this.core.accepting();
    if (!acc.ok) return Promise.reject(notLiveError({ role: this.core.role, kind: 'backpressure', reason: `busy (${acc.reason}): retry`, live: this.selfUrl }));
    return this.#requests.add(req, span, (packet, tag) => {
      this.drive({ type: 'packet', packet, tag });
      // Run the guest on it now: its entry and the run's go out in one write, and no turn of the loop is spent waiting.
      if (!this.#scheduled) this.#runSlice();
    }, receivedAt);
  }

  status(): VmStatus {
    this.catchUp();
    const s: FtStatus = this.core.status();
    const nl = this.notLive();
    return {
      ...s,
      guest: this.opts.guest,
      peer: { ...s.peer, ...(this.peerUrl ? { url: this.peerUrl } : {}) },
      ...(nl?.live ? { live_url: nl.live } : !nl ? { live_url: this.selfUrl } : {}),
      ...(s.reason === undefined && this.#stoppedReason ? { reason: this.#stoppedReason } : {}),
      ...(this.#failed !== undefined ? { role: 'stopped' as const, live: false, reason: this.#failed } : {}),
    };
  }

  get hadStream(): boolean {
    return this.#hadStream;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#failover?.fail('node closed', nowMs());
    if (this.#tick) clearInterval(this.#tick);
    this.#requests.rejectAll(() => notLiveError({ role: this.core.role, kind: 'stopped', reason: 'node shutting down', live: this.peerUrl }));
    await this.#sender?.close();
    await this.storage.close();
    if (this.arbiter !== this.storage) await this.arbiter.close();
  }
}

/** The rules these options switch off (for the start-up warning and status). */
export function brokenRules(o: { outputRule?: boolean; testAndSet?: boolean; dedup?: boolean }): string[] {
  return [
    ...(o.outputRule === false ? ['output-rule'] : []),
    ...(o.testAndSet === false ? ['test-and-set'] : []),
    ...(o.dedup === false ? ['dedup'] : []),
  ];
}
