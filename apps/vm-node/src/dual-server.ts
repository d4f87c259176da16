import { createServer as createNetServer, type Socket } from 'node:net';
import { createServer as createHttp1Server, type Server as Http1Server } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';


const PREFACE = Buffer.from('PRI * HTTP/2.0');

/**
 * A Fastify serverFactory for one port that speaks both cleartext HTTP/2
 * (prior knowledge: the log channel, undici H2CClient) and HTTP/1.1 (curl,
 * Prometheus, browsers). The first bytes of each connection decide: the
 * HTTP/2 connection preface goes to an http2 server, anything else to an
 * http1 server. closeAllConnections() resets every socket, so Fastify's
 * forceCloseConnections can finish close() with long-lived streams open.
 */
export function dualProtocolServerFactory(opts: { http2SessionTimeoutMs: number }) {
  return (handler: (req: any, res: any) => void): Http1Server => {
    const h1 = createHttp1Server(handler as never);
    h1.keepAliveTimeout = 5_000;
    const h2 = createHttp2Server({}, handler as never);
    h2.on('session', (session) => session.setTimeout(opts.http2SessionTimeoutMs, () => session.close()));
    const sockets = new Set<Socket>();
    const front = createNetServer({ noDelay: true }, (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
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
          // The http2 session reads what is already buffered on the next tick.
          h2.emit('connection', socket);
        } else {
          // The http1 server takes buffered bytes from 'data' events once flowing.
          h1.emit('connection', socket);
          socket.resume();
        }
      };
      socket.on('data', sniff);
    });
    // Typed as an http.Server for Fastify's serverFactory; Fastify only uses
    // listen/close/address/on and closeAllConnections.
    return Object.assign(front, {
      closeAllConnections() {
        for (const s of sockets) s.destroy();
        sockets.clear();
      },
    }) as unknown as Http1Server;
  };
}
