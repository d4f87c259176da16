/**
 * The active coordinator's side of replication, after the FT VM's primary:
 *
 * - Every scheduler input is recorded (seq, the active's clock) before it is
 *   stepped and streamed to the attached standby (GET /v1/standby/log: hello,
 *   the image of the state at attach time, then entries and state-hash
 *   checks).
 * - The output rule: a step's replies and publishes are released only once
 *   the standby acknowledged (POST /v1/standby/ack) the step's entry, so
 *   nothing a client or worker heard of can be missing at the standby.
 * - With no standby attached the coordinator runs alone ("not protected").
 *   Losing its standby (its stream closed, or no acknowledgement for
 *   suspectMs) it first claims the next epoch from the arbiter, as the VM's
 *   primary does: won, it goes on alone; lost, the standby took over and
 *   this coordinator is deposed (held replies fail, it stops).
 */
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SchedulerInput } from '@mr/mapreduce-core';
import type { InputLog } from '../plugins/app/scheduler-driver.ts';
import { ERR_BAD_ACK, ERR_NOT_ACTIVE, ERR_STANDBY_REFUSED } from '../errors.ts';
import type { Arbiter } from './arbiter.ts';
import { encodeControl, encodeImage, type DriverImage } from './frames.ts';

export type SourceMode = 'alone' | 'protected' | 'arbitrating' | 'deposed';

export interface SourceOptions {
  arbiter: Arbiter;
  nodeId: string;
  /** The epoch this coordinator won at start. */
  epoch: number;
  log: FastifyBaseLogger;
  registry: Registry;
  /** The state to hand a new standby (between steps). */
  image: () => Omit<DriverImage, 'seq'>;
  /** The state hash now (walkImage into sha256). */
  hash: () => string;
  /** A standby that acknowledged nothing for this long while entries wait is lost. Default 2000. */
  suspectMs?: number | undefined;
  /** A check frame (state hash) after every this many ticks. Default 50. */
  hashEveryTicks?: number | undefined;
  /** Bytes queued for a standby that does not read them; past this it is lost. Default 64 MiB. */
  maxQueuedBytes?: number | undefined;
  /** false BREAKS THE RULE (drills only): replies are not held for the standby's ack. */
  outputRule?: boolean | undefined;
  /** The arbiter says another coordinator holds a newer epoch. */
  onDeposed(why: string): void;
}

interface Session {
  id: string;
  standbyId: string;
  out: PassThrough;
  acked: number;
  /** Since when an entry waits for an ack (undefined: none waits). */
  waitingSince: number | undefined;
  closed: boolean;
}

interface Waiter {
  seq: number;
  resolve(): void;
  reject(err: Error): void;
}

export class ReplicationSource implements InputLog {
  #o: SourceOptions;
  #seq = 0;
  #epoch: number;
  #mode: SourceMode = 'alone';
  #session: Session | undefined;
  #waiters: Waiter[] = [];
  #ticks = 0;
  #timer: ReturnType<typeof setInterval>;
  #closed = false;
  #suspectMs: number;
  #m: { mode: Gauge; epoch: Gauge; bytes: Counter; acked: Gauge; seq: Gauge; lost: Counter; mismatches: Counter };

  constructor(o: SourceOptions) {
    this.#o = o;
    this.#epoch = o.epoch;
    this.#suspectMs = o.suspectMs ?? 2000;
    const r = o.registry;
    this.#m = {
      mode: new Gauge({ name: 'mr_coordinator_replication_mode', help: 'The active coordinator\'s replication: 1 for its mode (alone = not protected, protected = a standby acknowledges every input)', labelNames: ['mode'], registers: [r] }),
      epoch: new Gauge({ name: 'mr_coordinator_epoch', help: 'The arbitration epoch this coordinator holds', registers: [r] }),
      bytes: new Counter({ name: 'mr_standby_log_bytes_total', help: 'Bytes streamed to the standby (images and entries)', registers: [r] }),
      acked: new Gauge({ name: 'mr_standby_acked_seq', help: 'The highest input the standby acknowledged', registers: [r] }),
      seq: new Gauge({ name: 'mr_standby_log_seq', help: 'Inputs recorded (stepped) by the active', registers: [r] }),
      lost: new Counter({ name: 'mr_standby_lost_total', help: 'Standbys lost (stream closed or silent)', registers: [r] }),
      mismatches: new Counter({ name: 'mr_standby_hash_mismatch_total', help: 'State-hash checks the standby reported as different', registers: [r] }),
    };
    this.#setMode('alone');
    this.#m.epoch.set(this.#epoch);
    this.#timer = setInterval(() => this.#watch(), Math.max(10, Math.floor(this.#suspectMs / 4)));
    this.#timer.unref();
  }

  get mode(): SourceMode {
    return this.#mode;
  }
  get epoch(): number {
    return this.#epoch;
  }
  get protected(): boolean {
    return this.#mode === 'protected';
  }

  status(): { mode: SourceMode; epoch: number; seq: number; acked: number | undefined; standby: string | undefined } {
    return { mode: this.#mode, epoch: this.#epoch, seq: this.#seq, acked: this.#session?.acked, standby: this.#session?.standbyId };
  }

  #setMode(m: SourceMode): void {
    this.#mode = m;
    for (const x of ['alone', 'protected', 'arbitrating', 'deposed'] as const) this.#m.mode.set({ mode: x }, x === m ? 1 : 0);
  }

  // ------------------------------------------------------------ InputLog

  record(input: SchedulerInput, at: string): number {
    const seq = ++this.#seq;
    this.#m.seq.set(seq);
    const s = this.#session;
    if (s && !s.closed) {
      this.#write(s, encodeControl({ t: 'entry', seq, at, input }));
      s.waitingSince ??= Date.now();
    }
    return seq;
  }

  stepped(seq: number, input: SchedulerInput): void {
    if (input.type !== 'tick') return;
    const s = this.#session;
    if (!s || s.closed || ++this.#ticks % (this.#o.hashEveryTicks ?? 50) !== 0) return;
    this.#write(s, encodeControl({ t: 'check', seq, hash: this.#o.hash() }));
  }

  released(seq: number): Promise<void> | undefined {
    if (this.#mode === 'deposed') return Promise.reject(ERR_NOT_ACTIVE('deposed: another coordinator holds a newer epoch'));
    if (this.#o.outputRule === false) return undefined;
    if (this.#mode === 'alone') return undefined;
    if (this.#mode === 'protected' && this.#session && seq <= this.#session.acked) return undefined;
    return new Promise<void>((resolve, reject) => this.#waiters.push({ seq, resolve, reject }));
  }

  // ------------------------------------------------------------ the standby

  /**
   * A standby asks for the log: the stream starts with hello and the image
   * of the state now. One standby at a time: the same standby reconnecting
   * replaces its old stream; another one is refused while it is attached.
   */
  attach(standbyId: string): PassThrough {
    if (this.#closed) throw ERR_STANDBY_REFUSED('this coordinator is closing');
    if (this.#mode === 'deposed' || this.#mode === 'arbitrating') throw ERR_STANDBY_REFUSED(`this coordinator is ${this.#mode}`);
    const cur = this.#session;
    if (cur && !cur.closed && cur.standbyId !== standbyId) throw ERR_STANDBY_REFUSED(`standby ${cur.standbyId} is attached; one standby at a time`);
    if (cur) this.#end(cur);
    const s: Session = { id: randomUUID(), standbyId, out: new PassThrough(), acked: this.#seq, waitingSince: undefined, closed: false };
    this.#session = s;
    this.#write(s, encodeControl({ t: 'hello', session: s.id, epoch: this.#epoch, nodeId: this.#o.nodeId, seq: this.#seq }));
    this.#write(s, encodeImage({ seq: this.#seq, ...this.#o.image() }));
    // Steps before the image were released alone; steps after it wait for their acks. The image must be acked
    // (loaded and durable at the standby) within 3 x suspectMs.
    s.waitingSince = Date.now() + 2 * this.#suspectMs;
    this.#setMode('protected');
    s.out.on('close', () => this.#lost(s, 'the standby\'s stream closed'));
    this.#o.log.info({ standby: standbyId, seq: this.#seq, epoch: this.#epoch }, 'standby attached: state transferred, streaming inputs');
    return s.out;
  }

  /** An acknowledgement: the standby holds (durably) every input up to seq. */
  ack(session: string, seq: number, hash?: { seq: number; ok: boolean }): void {
    const s = this.#session;
    if (!s || s.closed || s.id !== session) throw ERR_BAD_ACK(`no open log session ${session}`);
    if (!Number.isInteger(seq) || seq > this.#seq) throw ERR_BAD_ACK(`seq ${seq} was never sent (last ${this.#seq})`);
    if (hash && !hash.ok) {
      this.#m.mismatches.inc();
      this.#o.log.error({ seq: hash.seq, standby: s.standbyId }, 'invariant violated: standby-state-hash (the standby\'s state differs from the active\'s)');
    }
    if (seq < s.acked) return;
    s.acked = seq;
    this.#m.acked.set(seq);
    s.waitingSince = seq < this.#seq ? Date.now() : undefined;
    let n = 0;
    while (n < this.#waiters.length && this.#waiters[n]!.seq <= seq) n++;
    for (const w of this.#waiters.splice(0, n)) w.resolve();
  }

  #write(s: Session, bytes: Buffer): void {
    this.#m.bytes.inc(bytes.byteLength);
    s.out.write(bytes);
    if (s.out.writableLength > (this.#o.maxQueuedBytes ?? 64 * 1024 * 1024)) this.#lost(s, 'the standby does not read its stream');
  }

  #end(s: Session): void {
    if (s.closed) return;
    s.closed = true;
    s.out.end();
  }

  #lastWatch = Date.now();

  #watch(): void {
    const now = Date.now();
    const stalled = now - this.#lastWatch - Math.max(10, Math.floor(this.#suspectMs / 4));
    this.#lastWatch = now;
    if (stalled > 1000) this.#o.log.warn({ ms: stalled }, 'event loop stalled (this process got no CPU, or something blocked it)');
    const s = this.#session;
    const late = (): boolean => s !== undefined && !s.closed && s.waitingSince !== undefined && Date.now() - s.waitingSince > this.#suspectMs;
    // Timers run before pending I/O is read: after a stall of this process, look again once the acks that came meanwhile were read.
    if (late()) setImmediate(() => late() && this.#lost(s!, `no acknowledgement for ${this.#suspectMs} ms`));
  }

  /** The standby is gone: claim the next epoch before going on alone (it may have taken over). */
  #lost(s: Session, why: string): void {
    if (this.#session !== s) return;
    this.#end(s);
    this.#session = undefined;
    if (this.#closed || this.#mode === 'deposed') return;
    this.#m.lost.inc();
    this.#setMode('arbitrating');
    const epoch = this.#epoch + 1;
    this.#o.log.warn({ standby: s.standbyId, why, epoch }, 'standby lost; claiming the next epoch before going on alone');
    const attempt = (n: number): void => {
      if (this.#closed) return;
      this.#o.arbiter.claim(this.#o.nodeId, epoch).then(
        (r) => {
          if (r.won) {
            this.#epoch = epoch;
            this.#m.epoch.set(epoch);
            this.#setMode('alone');
            this.#o.log.warn({ epoch }, 'won the next epoch: running alone (not protected)');
            for (const w of this.#waiters.splice(0)) w.resolve();
          } else this.#depose(`lost epoch ${epoch} to ${r.owner} (holds ${r.epoch})`);
        },
        (err: Error) => {
          if (n % 20 === 0) this.#o.log.warn({ err: err.message, epoch }, 'arbiter unreachable; retrying (replies stay held)');
          setTimeout(() => attempt(n + 1), 100).unref();
        },
      );
    };
    attempt(0);
  }

  #depose(why: string): void {
    this.#setMode('deposed');
    this.#o.log.error({ why }, 'deposed: another coordinator is live; refusing all work');
    const err = ERR_NOT_ACTIVE(`deposed: ${why}`);
    for (const w of this.#waiters.splice(0)) w.reject(err);
    this.#o.onDeposed(why);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#session) this.#end(this.#session);
    this.#session = undefined;
  }
}
