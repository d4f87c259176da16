/**
 * The standby coordinator's side of replication, after the FT VM's backup:
 * it opens the active's log stream (GET /v1/standby/log), loads the image
 * (state transfer), applies every input in order into its own scheduler and
 * journal, acknowledges each once its records are durable here
 * (POST /v1/standby/ack), and compares the state hash at each check.
 *
 * Failure detection: a broken stream whose reconnection is refused (the
 * active's process is gone) is a failure at once; otherwise silence on the
 * stream for suspectMs is (the active sends a tick input every tickMs). Then
 * it claims the next epoch from the arbiter; won, it goes live; lost, the
 * active is alive and went on alone, and the standby asks for the log again.
 */
import { Pool } from 'undici';
import type { FastifyBaseLogger } from 'fastify';
import type { Arbiter } from './arbiter.ts';
import { FrameDecoder, type ControlFrame, type DriverImage } from './frames.ts';
import type { LogEntry } from '../plugins/app/scheduler-driver.ts';

export interface FollowerOptions {
  /** The active's base URL. */
  activeUrl: string;
  nodeId: string;
  /** The peer credential (MR_PEER_TOKEN). */
  token?: string | undefined;
  arbiter: Arbiter;
  log: FastifyBaseLogger;
  /** Silence on the stream that counts as the active's failure. Default 2000. */
  suspectMs?: number | undefined;
  /** A new image (first or after a reconnection): build or replace the state. */
  load(image: DriverImage): Promise<void>;
  /** Steps one input; resolves once durable. */
  apply(e: LogEntry): Promise<void>;
  /** The state hash now. */
  hash(): string;
  /** Won the epoch: serve. */
  goLive(epoch: number): Promise<void>;
}

/** Ref'd: before the server listens, the follower's retries are all that keeps the process alive. */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class StandbyFollower {
  readonly #o: FollowerOptions;
  readonly #pool: Pool;
  readonly #suspectMs: number;
  #closed = false;
  #live = false;
  #abort: AbortController | undefined;
  /** The epoch of the last hello (undefined: none since the last lost claim). */
  #epoch: number | undefined;
  #session = '';
  /** Highest seq applied (and the one acked last). */
  #applied = 0;
  #durable = 0;
  #ackInFlight = false;
  #ackedSent = 0;
  #check: { seq: number; ok: boolean } | undefined;
  #lastFrameAt = Date.now();
  #loaded = false;
  #queue: Promise<void> = Promise.resolve();
  #firstImage: { resolve(): void; promise: Promise<void> };
  #mismatches = 0;
  #run: Promise<void> | undefined;

  constructor(o: FollowerOptions) {
    this.#o = o;
    this.#suspectMs = o.suspectMs ?? 2000;
    this.#pool = new Pool(new URL(o.activeUrl).origin, { connections: 2, connect: { timeout: 1000 }, headersTimeout: 5000, bodyTimeout: 0 });
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#firstImage = { resolve, promise };
  }

  get live(): boolean {
    return this.#live;
  }
  get epoch(): number | undefined {
    return this.#epoch;
  }
  get applied(): number {
    return this.#applied;
  }
  get mismatches(): number {
    return this.#mismatches;
  }

  /** Starts following; resolves once the first image is loaded. */
  start(): Promise<void> {
    this.#run ??= this.#loop();
    return this.#firstImage.promise;
  }

  async #loop(): Promise<void> {
    let waitingSince = Date.now();
    while (!this.#closed && !this.#live) {
      let refused = false;
      try {
        await this.#stream();
        this.#o.log.warn('the active ended the log stream');
      } catch (err) {
        const e = err as { code?: string; cause?: { code?: string }; message?: string };
        refused = (e.code ?? e.cause?.code) === 'ECONNREFUSED';
        if (!this.#closed) this.#o.log.warn({ err: e.message, code: e.code ?? e.cause?.code }, 'log stream to the active broken');
      }
      if (this.#closed) return;
      await this.#queue;
      const silent = Date.now() - this.#lastFrameAt;
      if (this.#loaded && this.#epoch !== undefined && (refused || silent >= this.#suspectMs)) {
        await this.#takeOver(refused ? 'the active refuses connections (its process is gone)' : `no word from the active for ${silent} ms`);
        if (this.#live || this.#closed) return;
      } else if (!this.#loaded && Date.now() - waitingSince > 10_000) {
        this.#o.log.warn({ active: this.#o.activeUrl }, 'still waiting for the active to hand over its state');
        waitingSince = Date.now();
      }
      await sleep(refused ? 50 : 100);
    }
  }

  async #stream(): Promise<void> {
    const abort = new AbortController();
    this.#abort = abort;
    const headers: Record<string, string> = { 'x-mr-standby-id': this.#o.nodeId };
    if (this.#o.token) headers['authorization'] = `Bearer ${this.#o.token}`;
    const opened = Date.now();
    const silent = (): boolean => Date.now() - Math.max(opened, this.#lastFrameAt) > this.#suspectMs;
    const watchdog = setInterval(() => {
      // Timers run before pending I/O is read: after a stall of this process, look again once the socket was read.
      if (silent()) setImmediate(() => silent() && abort.abort(new Error(`silent for ${this.#suspectMs} ms`)));
    }, Math.max(10, Math.floor(this.#suspectMs / 5)));
    watchdog.unref();
    try {
      const res = await this.#pool.request({ method: 'GET', path: '/v1/standby/log', headers, signal: abort.signal });
      if (res.statusCode !== 200) {
        const text = await res.body.text().catch(() => '');
        throw new Error(`the active answered ${res.statusCode}: ${text.slice(0, 300)}`);
      }
      const decoder = new FrameDecoder();
      for await (const chunk of res.body) {
        this.#lastFrameAt = Date.now();
        for (const f of decoder.push(chunk as Buffer)) {
          if (f.kind === 'image') {
            const image = f.image;
            this.#enqueue(() => this.#load(image));
          } else {
            const c = f.frame;
            this.#enqueue(() => this.#control(c));
          }
        }
      }
    } finally {
      clearInterval(watchdog);
      this.#abort = undefined;
    }
  }

  /** Frames are handled one after the other; a bad one ends the stream (the next one starts with a new image). */
  #enqueue(fn: () => Promise<void>): void {
    this.#queue = this.#queue.then(fn).catch((err: Error) => {
      this.#o.log.error({ err: err.message }, 'cannot follow the log; asking for a new state transfer');
      this.#abort?.abort(err);
    });
  }

  async #load(image: DriverImage): Promise<void> {
    await this.#o.load(image);
    this.#applied = image.seq;
    this.#durable = image.seq;
    this.#ackedSent = -1;
    this.#loaded = true;
    this.#o.log.info({ seq: image.seq, epoch: this.#epoch }, 'state transferred from the active; following its inputs');
    this.#firstImage.resolve();
    this.#sendAck();
  }

  async #control(c: ControlFrame): Promise<void> {
    switch (c.t) {
      case 'hello':
        this.#epoch = c.epoch;
        this.#session = c.session;
        return;
      case 'entry': {
        if (c.seq !== this.#applied + 1) throw new Error(`log entry ${c.seq} after ${this.#applied}`);
        this.#applied = c.seq;
        const seq = c.seq;
        void this.#o.apply(c).then(
          () => {
            if (seq > this.#durable) this.#durable = seq;
            this.#sendAck();
          },
          (err: Error) => this.#o.log.error({ err: err.message, seq }, 'applying an input failed'),
        );
        return;
      }
      case 'check': {
        if (c.seq !== this.#applied) return;
        const ok = this.#o.hash() === c.hash;
        if (!ok) {
          this.#mismatches++;
          this.#o.log.error({ seq: c.seq }, 'invariant violated: standby-state-hash (this standby\'s state differs from the active\'s)');
        }
        this.#check = { seq: c.seq, ok };
        this.#sendAck();
        return;
      }
    }
  }

  /** At most one ack in flight; it carries the highest durable seq. */
  #sendAck(): void {
    if (this.#ackInFlight || this.#live || this.#closed) return;
    if (this.#durable === this.#ackedSent && !this.#check) return;
    const seq = this.#durable;
    const check = this.#check;
    this.#check = undefined;
    this.#ackInFlight = true;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#o.token) headers['authorization'] = `Bearer ${this.#o.token}`;
    this.#pool
      .request({ method: 'POST', path: '/v1/standby/ack', headers, body: JSON.stringify({ session: this.#session, seq, ...(check ? { check } : {}) }) })
      .then(async (res) => {
        await res.body.text();
        if (res.statusCode === 200) this.#ackedSent = seq;
      })
      .catch(() => {})
      .finally(() => {
        this.#ackInFlight = false;
        if (this.#durable !== this.#ackedSent) setImmediate(() => this.#sendAck());
      });
  }

  async #takeOver(why: string): Promise<void> {
    const epoch = this.#epoch! + 1;
    this.#o.log.warn({ why, epoch, applied: this.#applied }, 'the active failed; claiming the next epoch');
    for (let n = 0; !this.#closed; n++) {
      try {
        const r = await this.#o.arbiter.claim(this.#o.nodeId, epoch);
        if (!r.won) {
          this.#o.log.warn({ epoch, owner: r.owner, held: r.epoch }, 'lost the claim: the active went on alone; asking for its log again');
          this.#epoch = undefined;
          return;
        }
        this.#live = true;
        this.#abort?.abort();
        this.#o.log.warn({ epoch, applied: this.#applied }, 'won the epoch: this coordinator is live');
        await this.#o.goLive(epoch);
        return;
      } catch (err) {
        if (n % 20 === 0) this.#o.log.warn({ err: (err as Error).message, epoch }, 'arbiter unreachable; retrying (not live until it answers)');
        await sleep(100);
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.abort();
    await this.#run?.catch(() => {});
    await this.#pool.close().catch(() => {});
  }
}
