import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttp1Server, type IncomingMessage, type Server as Http1Server, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';

const PREFACE = Buffer.from('PRI * HTTP/2.0');

/**
 * The limits every port of a VM node and of the storage node enforces. The
 * HTTP/1.1 and HTTP/2 servers behind the sniffing front are never listened
 * themselves, so Node's own header and request timeouts never run for them:
 * these are enforced here, by one sweep over the open connections.
 */
export interface ConnectionLimits {
  /**
   * Open connections at most. A connection past the cap closes the oldest
   * connection that has no request in flight (one still sending its first
   * bytes, or an idle keep-alive one) to make room, or is refused when every
   * open connection is busy. So idle connections can never lock out a client
   * that sends its request, and a live log stream is never closed for room.
   */
  maxConnections: number;
  /** A new connection must complete its first request head (HTTP/1.1) or open its first stream (HTTP/2) within this. */
  headersTimeoutMs: number;
  /** A connection with no request in flight (HTTP/1.1 keep-alive, an HTTP/2 session without open streams) is closed after this. */
  idleTimeoutMs: number;
  /**
   * An HTTP/1.1 request (head to end of answer) is cut after this. HTTP/2
   * streams are exempt: the log stream lives as long as the pair, and while
   * it is open its session is never idle.
   */
  requestTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = Object.freeze({
  maxConnections: 512,
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
});

/** Counters of one port's connection handling. */
export interface ConnectionStats {
  /** Connections open now. */
  open: number;
  /** Connections closed to make room for a new one (they had no request in flight). */
  evicted: number;
  /** New connections refused because every open connection was busy. */
  refused: number;
  /** Connections closed by a timeout (headers, idle or request). */
  timedOut: number;
}

interface Conn {
  socket: Socket;
  /** sniff: deciding the protocol from the first bytes. */
  phase: 'sniff' | 'h1' | 'h2';
  /** Requests (HTTP/1.1) or streams (HTTP/2) in flight. */
  active: number;
  /** Since when the connection is in its current state (connected, request started, last request ended). */
  since: number;
  /** A request or stream was seen: idle from now on means idleTimeoutMs, not headersTimeoutMs. */
  served: boolean;
}

export type DualServer = Http1Server & {
  closeAllConnections(): void;
  connectionStats(): ConnectionStats;
  readonly limits: ConnectionLimits;
};

/**
 * A Fastify serverFactory for one port that speaks both cleartext HTTP/2
 * (prior knowledge: the log channel, undici H2CClient) and HTTP/1.1 (curl,
 * Prometheus, browsers); with `http2: false` (the storage node) HTTP/1.1 only.
 * The first bytes of each connection decide: the HTTP/2 connection preface
 * goes to an http2 server, anything else to an http1 server. Every connection
 * is held to `limits` (DEFAULT_CONNECTION_LIMITS). closeAllConnections() resets
 * every socket, so Fastify's forceCloseConnections can finish close() with
 * long-lived streams open.
 */
export function dualProtocolServerFactory(opts: { http2SessionTimeoutMs?: number; http2?: boolean; limits?: Partial<ConnectionLimits> | undefined } = {}) {
  const limits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...(opts.limits ?? {}) };
  for (const [k, v] of Object.entries(limits)) if (!Number.isInteger(v) || v < 1) throw new RangeError(`connection limit ${k}=${v}`);
  const http2 = opts.http2 ?? true;
  return (handler: (req: any, res: any) => void): DualServer => {
    const conns = new Map<Socket, Conn>();
    const stats = { evicted: 0, refused: 0, timedOut: 0 };
    const now = () => performance.now();

    const h1 = createHttp1Server(handler as never);
    h1.keepAliveTimeout = Math.min(5_000, limits.idleTimeoutMs);
    // Before the app's handler, so even an answer sent at once is counted.
    h1.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      const c = conns.get(req.socket as Socket);
      if (!c) return;
      if (c.active++ === 0) c.since = now();
      c.served = true;
      res.once('close', () => {
        if (--c.active === 0) c.since = now();
      });
    });

    const h2 = createHttp2Server({ settings: { maxConcurrentStreams: 128 } }, handler as never);
    const sessions = new WeakMap<Http2Session, Conn>();
    let adopting: Conn | undefined;
    // Emitted synchronously inside h2.emit('connection'), below.
    h2.on('session', (session: Http2Session) => {
      if (adopting) sessions.set(session, adopting);
      if (opts.http2SessionTimeoutMs) session.setTimeout(opts.http2SessionTimeoutMs, () => session.close());
    });
    h2.prependListener('stream', (stream: ServerHttp2Stream) => {
      const c = sessions.get(stream.session as Http2Session);
      if (!c) return;
      if (c.active++ === 0) c.since = now();
      c.served = true;
      stream.once('close', () => {
        if (--c.active === 0) c.since = now();
      });
    });

    const drop = (c: Conn) => {
      conns.delete(c.socket);
      c.socket.destroy();
    };

    /** Makes room for one more connection: closes the oldest one without a request in flight. */
    const evictOne = (): boolean => {
      for (const c of conns.values()) {
        if (c.active === 0) {
          drop(c);
          stats.evicted++;
          return true;
        }
      }
      return false;
    };

    const front = createNetServer({ noDelay: true }, (socket) => {
      socket.on('error', () => socket.destroy());
      if (conns.size >= limits.maxConnections && !evictOne()) {
        stats.refused++;
        socket.destroy();
        return;
      }
      const c: Conn = { socket, phase: 'sniff', active: 0, since: now(), served: false };
      conns.set(socket, c);
      socket.on('close', () => conns.delete(socket));
      if (!http2) {
        c.phase = 'h1';
        h1.emit('connection', socket);
        return;
      }
      let head: Buffer = Buffer.alloc(0);
      const sniff = (chunk: Buffer) => {
        head = head.length ? Buffer.concat([head, chunk]) : chunk;
        const n = Math.min(head.length, PREFACE.length);
        const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
        if (isH2 && head.length < PREFACE.length) return; // need more bytes to decide
        socket.off('data', sniff);
        socket.pause();
        socket.unshift(head);
        if (isH2) {
          c.phase = 'h2';
          // The http2 session reads what is already buffered on the next tick.
          adopting = c;
          try {
            h2.emit('connection', socket);
          } finally {
            adopting = undefined;
          }
        } else {
          c.phase = 'h1';
          // The http1 server takes buffered bytes from 'data' events once flowing.
          h1.emit('connection', socket);
          socket.resume();
        }
      };
      socket.on('data', sniff);
    });

    // One sweep enforces every timeout: no timer per connection.
    const sweepMs = Math.max(20, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.idleTimeoutMs, limits.requestTimeoutMs) / 4)));
    let sweeper: NodeJS.Timeout | undefined;
    const sweep = () => {
      const t = now();
      for (const c of [...conns.values()]) {
        let limit: number | undefined;
        if (c.active === 0) limit = c.served ? limits.idleTimeoutMs : limits.headersTimeoutMs;
        else if (c.phase === 'h1') limit = limits.requestTimeoutMs;
        if (limit !== undefined && t - c.since > limit) {
          drop(c);
          stats.timedOut++;
        }
      }
    };
    front.on('listening', () => {
      sweeper ??= setInterval(sweep, sweepMs);
      sweeper.unref();
    });
    front.on('close', () => {
      if (sweeper) clearInterval(sweeper);
      sweeper = undefined;
    });

    // Typed as an http.Server for Fastify's serverFactory; Fastify only uses
    // listen/close/address/on and closeAllConnections.
    return Object.assign(front as NetServer, {
      limits,
      closeAllConnections() {
        for (const c of [...conns.values()]) drop(c);
      },
      connectionStats(): ConnectionStats {
        return { open: conns.size, ...stats };
      },
    }) as unknown as DualServer;
  };
}
