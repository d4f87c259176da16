import { createServer, type Server } from 'node:net';

/** `n` distinct free ports on `host` (held open together, then released for the nodes). */
export async function freePorts(host: string, n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, host, () => resolve()));
    }
    return servers.map((srv) => (srv.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  }
}
