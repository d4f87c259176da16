/**
 * A userspace TCP fault proxy for one link: the drill starts it between two
 * parts (e.g. primary -> backup's log channel) and changes its faults while
 * the drill runs. This kernel has no netem, so delay and bandwidth come from
 * here.
 *
 *   blackhole  forward nothing, either way; bytes are held (as the network
 *              holds a TCP stream across a partition) and flow on heal
 *   drop       forward nothing and discard what is sent meanwhile; a
 *              connection that lost bytes is reset on heal (a TCP stream has
 *              no holes)
 *   reset      reset (RST) every open connection and every new one
 *   delayMs    each chunk is delivered delayMs after it arrived, in order
 *   bytesPerSec  bandwidth limit per direction per connection
 *
 * Faults apply at once to every open connection and to new ones.
 *
 * Taps trigger a fault on an event instead of at a time: a tap watches each
 * connection's request (client -> server bytes) and reply (server -> client
 * bytes since that request) and, on the first reply that matches, holds that
 * connection's replies (until release()), resets the connection (the reply
 * is lost), or only reports it. A drill uses them to hit a narrow window
 * every time, e.g. "the reply to an incr is in flight" or "a task was handed
 * to this worker".
 */
import net from 'node:net';
import { createError } from '@mr/errors';
import type { LinkFault } from '@mr/chaos';

export const ERR_PROXY_CONFIG = createError<[string]>('DRILL_ERR_PROXY_CONFIG', 'fault proxy: %s', 400, { retryable: false });

export interface ProxyFault extends LinkFault {
  drop?: boolean;
}

/** A tap: what to look for, and what to do to the connection where it is seen first. */
export interface TapSpec {
  /** Tested on the request the reply answers (its bytes, at most TAP_WINDOW_BYTES); absent: any request. */
  request?: RegExp;
  /** Tested on the reply so far; absent: the reply's first bytes fire it. */
  reply?: RegExp;
  /** hold: the reply waits (this connection's server -> client bytes) until release(); reset: the connection is reset, the reply lost; observe: nothing. */
  effect: 'hold' | 'reset' | 'observe';
  /** Fire on the (skip + 1)-th matching reply (default 0: the first). */
  skip?: number;
}

/** What fired a tap: the named groups of the reply's (else the request's) match, and the matched text. */
export interface TapHit {
  groups: Record<string, string>;
  text: string;
}

/** Bytes of a request or reply a tap looks at (the start of it). */
const TAP_WINDOW_BYTES = 64 << 10;

interface Tap {
  spec: TapSpec;
  skipped: number;
  fire: (hit: TapHit) => void;
}

/** Bytes a direction may hold before it stops reading from its source (backpressure). */
const HOLD_BYTES_MAX = 4 << 20;
/** Chunks larger than this are split, so a bandwidth limit paces smoothly. */
const SLICE_BYTES = 16 << 10;

function validate(f: ProxyFault): ProxyFault {
  for (const k of ['delayMs', 'bytesPerSec'] as const) {
    const v = f[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw ERR_PROXY_CONFIG(`${k} must be a non-negative number, got ${v}`);
  }
  if (f.delayMs !== undefined && f.delayMs > 60_000) throw ERR_PROXY_CONFIG(`delayMs at most 60000, got ${f.delayMs}`);
  if (f.bytesPerSec !== undefined && f.bytesPerSec > 0 && f.bytesPerSec < 64) throw ERR_PROXY_CONFIG(`bytesPerSec at least 64 (or 0: no limit), got ${f.bytesPerSec}`);
  return { ...f };
}

/** One direction of one connection: a queue of chunks with their release times. */
class Direction {
  #queue: { buf: Buffer; at: number }[] = [];
  #held = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastAt = 0;
  #waitingDrain = false;
  lostBytes = 0;
  /** A tap holds what this direction carries until the proxy's release(). */
  held = false;
  /** Sees each chunk before it is queued; false drops it (the connection was reset). */
  onChunk: ((b: Buffer) => boolean) | undefined;

  constructor(
    readonly src: net.Socket,
    readonly dst: net.Socket,
    readonly proxy: FaultProxy,
  ) {
    src.on('data', (b: Buffer) => {
      if (this.onChunk && !this.onChunk(b)) return;
      this.#push(b);
    });
    dst.on('drain', () => {
      this.#waitingDrain = false;
      this.pump();
    });
  }

  #push(b: Buffer): void {
    const f = this.proxy.fault;
    if (f.drop) {
      this.lostBytes += b.length;
      return;
    }
    const now = performance.now();
    const delay = f.delayMs ?? 0;
    for (let i = 0; i < b.length; i += SLICE_BYTES) {
      const slice = b.subarray(i, i + SLICE_BYTES);
      let at = Math.max(now + delay, this.#lastAt);
      if (f.bytesPerSec) at += (slice.length / f.bytesPerSec) * 1000;
      this.#lastAt = at;
      this.#queue.push({ buf: slice, at });
      this.#held += slice.length;
    }
    if (this.#held > HOLD_BYTES_MAX) this.src.pause();
    this.pump();
  }

  /** Delivers what is due; schedules itself for the next chunk. */
  pump(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.proxy.fault.blackhole || this.held || this.#waitingDrain || this.dst.destroyed) return;
    const now = performance.now();
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now) {
      const { buf } = this.#queue.shift()!;
      this.#held -= buf.length;
      if (!this.dst.write(buf)) {
        this.#waitingDrain = true;
        break;
      }
    }
    if (this.#held <= HOLD_BYTES_MAX / 2 && this.src.isPaused()) this.src.resume();
    if (this.#queue.length > 0 && !this.#waitingDrain) {
      this.#timer = setTimeout(() => this.pump(), Math.max(1, this.#queue[0]!.at - now));
    }
  }

  /** After a blackhole or delay ends: what was held becomes due now (keeping its order). */
  release(): void {
    const now = performance.now();
    const f = this.proxy.fault;
    let last = now;
    for (const q of this.#queue) {
      q.at = Math.min(q.at, Math.max(now + (f.delayMs ?? 0), last));
      last = q.at;
    }
    this.#lastAt = Math.min(this.#lastAt, last);
    this.pump();
  }

  get pendingFlush(): boolean {
    return this.#queue.length > 0;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#queue = [];
  }
}

class Link {
  readonly up: Direction;
  readonly down: Direction;
  closed = false;
  /** The current request and its reply so far (their first TAP_WINDOW_BYTES), for taps. */
  #request = '';
  #reply = '';
  #replying = false;
  /** Numbers the replies on this connection (a tap decides each one once). */
  #replyNo = 0;

  constructor(
    readonly client: net.Socket,
    readonly server: net.Socket,
    proxy: FaultProxy,
  ) {
    this.up = new Direction(client, server, proxy);
    this.down = new Direction(server, client, proxy);
    this.up.onChunk = (b) => {
      // Requests and replies alternate on a connection (no pipelining): bytes after a reply start the next request.
      if (this.#replying) {
        this.#replying = false;
        this.#replyNo++;
        this.#request = '';
        this.#reply = '';
      }
      if (this.#request.length < TAP_WINDOW_BYTES) this.#request += b.toString('latin1', 0, TAP_WINDOW_BYTES - this.#request.length);
      return true;
    };
    this.down.onChunk = (b) => {
      this.#replying = true;
      if (this.#reply.length < TAP_WINDOW_BYTES) this.#reply += b.toString('latin1', 0, TAP_WINDOW_BYTES - this.#reply.length);
      return proxy.tapReply(this, this.#replyNo, this.#request, this.#reply);
    };
    // A half-close travels once what was queued before it has been delivered.
    const endWhenFlushed = (d: Direction, dst: net.Socket) => {
      const check = () => (d.pendingFlush ? setTimeout(check, 5) : dst.end());
      check();
    };
    client.on('end', () => endWhenFlushed(this.up, server));
    server.on('end', () => endWhenFlushed(this.down, client));
    const onClose = () => this.destroy(false);
    client.on('close', onClose);
    server.on('close', onClose);
    client.on('error', () => {});
    server.on('error', () => {});
  }

  destroy(reset: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.up.stop();
    this.down.stop();
    for (const s of [this.client, this.server]) {
      if (reset && !s.destroyed) s.resetAndDestroy();
      else s.destroy();
    }
  }
}

export interface ProxyStats {
  connections: number;
  reset: number;
}

export class FaultProxy {
  #server: net.Server;
  #links = new Set<Link>();
  #fault: ProxyFault = {};
  #taps: Tap[] = [];
  /** Replies already matched by a tap on this connection (a reply fires at most one tap, once). */
  #tapped = new WeakMap<Link, number>();
  readonly stats: ProxyStats = { connections: 0, reset: 0 };

  private constructor(
    server: net.Server,
    readonly target: { host: string; port: number },
    readonly name: string,
  ) {
    this.#server = server;
  }

  /** Starts a proxy on a free loopback port that forwards to `targetUrl` (host:port of an http URL). */
  static async start(targetUrl: string, name = 'link'): Promise<FaultProxy> {
    const u = new URL(targetUrl);
    const target = { host: u.hostname, port: Number(u.port) };
    if (!target.port) throw ERR_PROXY_CONFIG(`target ${targetUrl} needs an explicit port`);
    const server = net.createServer({ noDelay: true, pauseOnConnect: true });
    const proxy = new FaultProxy(server, target, name);
    server.on('connection', (c) => proxy.#accept(c));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get fault(): Readonly<ProxyFault> {
    return this.#fault;
  }

  get openConnections(): number {
    return this.#links.size;
  }

  #accept(client: net.Socket): void {
    this.stats.connections++;
    client.on('error', () => {});
    if (this.#fault.reset) {
      this.stats.reset++;
      client.resetAndDestroy();
      return;
    }
    const server = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
    const link = new Link(client, server, this);
    this.#links.add(link);
    const forget = () => this.#links.delete(link);
    client.on('close', forget);
    server.on('close', forget);
    server.once('connect', () => client.resume());
    server.once('error', () => link.destroy(true));
  }

  /** Replaces the link's faults (`{}` heals it). Applies to open connections at once. */
  set(fault: ProxyFault): void {
    const before = this.#fault;
    this.#fault = validate(fault);
    if (this.#fault.reset) {
      for (const l of [...this.#links]) {
        this.stats.reset++;
        l.destroy(true);
      }
      return;
    }
    if (before.drop && !this.#fault.drop) {
      for (const l of [...this.#links]) {
        if (l.up.lostBytes > 0 || l.down.lostBytes > 0) {
          this.stats.reset++;
          l.destroy(true);
        }
      }
    }
    for (const l of this.#links) {
      l.up.release();
      l.down.release();
    }
  }

  /**
   * Arms a tap: `hit` resolves when a reply matching `spec` passes (its effect applied), or
   * never if cancelled first. Taps are tried in the order they were armed; a reply fires one.
   */
  tap(spec: TapSpec, onHit?: (hit: TapHit) => void): { hit: Promise<TapHit>; cancel: () => void } {
    let resolve!: (hit: TapHit) => void;
    const hit = new Promise<TapHit>((r) => (resolve = r));
    // onHit runs at once, while the reply is being decided (e.g. to cancel taps armed beside this one).
    const t: Tap = { spec, skipped: 0, fire: (h) => (onHit?.(h), resolve(h)) };
    this.#taps.push(t);
    return { hit, cancel: () => (this.#taps = this.#taps.filter((x) => x !== t)) };
  }

  /** Called by a link with its current request and reply; false: drop the chunk (the connection was reset). */
  tapReply(link: Link, replyNo: number, request: string, reply: string): boolean {
    if (this.#taps.length === 0 || this.#tapped.get(link) === replyNo) return true;
    for (const t of this.#taps) {
      const rq = t.spec.request ? t.spec.request.exec(request) : undefined;
      if (rq === null) continue;
      const rp = t.spec.reply ? t.spec.reply.exec(reply) : undefined;
      if (rp === null) continue;
      // This reply is decided for every tap: it counts once, even if later chunks arrive.
      this.#tapped.set(link, replyNo);
      if (t.skipped < (t.spec.skip ?? 0)) {
        t.skipped++;
        return true;
      }
      this.#taps = this.#taps.filter((x) => x !== t);
      const m = rp ?? rq;
      const hit: TapHit = { groups: { ...(m?.groups ?? {}) }, text: (m?.[0] ?? reply.slice(0, 200)).slice(0, 500) };
      if (t.spec.effect === 'reset') {
        this.stats.reset++;
        link.destroy(true);
        t.fire(hit);
        return false;
      }
      if (t.spec.effect === 'hold') link.down.held = true;
      t.fire(hit);
      return true;
    }
    return true;
  }

  /** Lets every reply a tap holds go on (in order). */
  release(): number {
    let n = 0;
    for (const l of this.#links) {
      if (!l.down.held) continue;
      n++;
      l.down.held = false;
      l.down.pump();
    }
    return n;
  }

  async close(): Promise<void> {
    this.#taps = [];
    for (const l of [...this.#links]) l.destroy(false);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
