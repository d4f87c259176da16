import { createServer, connect, type Socket, type Server } from 'node:net';
import { once } from 'node:events';

/**
 * A TCP proxy on 127.0.0.1 that a test controls, to partition two nodes:
 * cut() destroys every connection and refuses new ones (the link is down),
 * heal() lets connections through again.
 */
export class TcpProxy {
  readonly #target: { host: string; port: number };
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut = false;
  connections = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = createServer((client) => {
      if (this.#cut) return client.destroy();
      this.connections++;
      const upstream = connect(this.#target.port, this.#target.host);
      this.#sockets.add(client);
      this.#sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  /** Starts a proxy to `targetUrl` (http://host:port) on a free port. */
  static async start(targetUrl: string): Promise<TcpProxy> {
    const u = new URL(targetUrl);
    const p = new TcpProxy({ host: u.hostname, port: Number(u.port) });
    p.#server.listen(0, '127.0.0.1');
    await once(p.#server, 'listening');
    return p;
  }

  get url(): string {
    const a = this.#server.address();
    return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  }

  get isCut(): boolean {
    return this.#cut;
  }

  /** Breaks the link: resets every open connection and refuses new ones. */
  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  /** Resets the open connections once (a blip); new ones are let through. */
  reset(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  heal(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
