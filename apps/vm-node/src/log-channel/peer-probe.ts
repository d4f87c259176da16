/**
 * Is the peer's process gone? Asked when a log stream breaks (EOF or reset on
 * its HTTP/2 connection): a TCP connect to the peer's address that is refused
 * means nothing listens there any more (the process died: kill -9, a crash),
 * so the FT core may suspect it at once (`peer-lost`) instead of waiting out
 * the silence window. Anything else (connected: the process is alive, its
 * stream broke for another reason and it reconnects; timed out or unreachable:
 * a network fault) answers false and leaves detection to the silence window,
 * so a blip does not cause a failover. Test-and-set at the storage node stays
 * what prevents two primaries; this only decides how soon to ask.
 */
import { connect } from 'node:net';

export async function peerGone(url: string, timeoutMs: number): Promise<boolean> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return new Promise<boolean>((resolve) => {
    const s = connect({ host, port });
    const done = (gone: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(gone);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    s.once('connect', () => done(false));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}
