import { connect, type Socket } from 'node:net';

/** Opens `n` TCP connections that send nothing, in batches (the listen backlog is finite); resolves once all are connected or closed. */
export async function idleSockets(url: string, n: number): Promise<{ sockets: Socket[]; closed(): number }> {
  const { hostname, port } = new URL(url);
  const sockets: Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i += 250) {
    await Promise.all(
      Array.from({ length: Math.min(250, n - i) }, () => new Promise<void>((resolve) => {
        const s = connect({ host: hostname, port: Number(port) });
        sockets.push(s);
        s.on('error', () => {});
        s.once('close', () => {
          closed++;
          resolve();
        });
        s.once('connect', () => resolve());
      })),
    );
  }
  return { sockets, closed: () => closed };
}
