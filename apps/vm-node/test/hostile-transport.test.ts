import { test } from 'node:test';
import assert from 'node:assert/strict';
import { idleSockets } from './helpers/sockets.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { H2CClient } from 'undici';
import { startPair, waitProtected } from './helpers/pair.ts';


test('2,000 idle connections on each node and on storage: the cap and the timeouts hold, clients are served, the log stream lives, no failover', async (t) => {
  const limits = { maxConnections: 256, headersTimeoutMs: 1000, idleTimeoutMs: 2000 };
  const p = await startPair(t, { connectionLimits: limits }, { connectionLimits: limits });
  const before = await waitProtected(p);
  let n = 0;
  const incr = () => p.incr('k', ++n);
  assert.equal(await incr(), 1);
  const floods = await Promise.all([p.primaryUrl, p.backupUrl, p.storageUrl].map((url) => idleSockets(url, 2000)));
  t.after(() => floods.forEach((f) => f.sockets.forEach((s) => s.destroy())));
  // While the idle connections are open: every port stays under its cap, and the pair serves.
  for (let i = 0; i < 20; i++) assert.equal(await incr(), n);
  for (const [name, s] of Object.entries(p.servers)) {
    const st = s.connectionStats();
    assert.ok(st.open <= limits.maxConnections, `${name}: ${JSON.stringify(st)}`);
  }
  const mid = await waitProtected(p);
  assert.equal(mid.primary.epoch, before.primary.epoch);
  // Past the header timeout every idle connection is gone; the log stream (an HTTP/2 stream on the backup's port) is not.
  await sleep(limits.headersTimeoutMs + 500);
  for (const [i, f] of floods.entries()) assert.equal(f.closed(), 2000, `port ${i}: ${f.closed()} of 2000 idle connections closed`);
  const streamsBefore = mid.backup.log.sent;
  for (let i = 0; i < 20; i++) assert.equal(await incr(), n);
  const after = await waitProtected(p);
  assert.ok(after.backup.log.sent > streamsBefore, 'the backup still receives the log');
  assert.equal(after.primary.epoch, before.primary.epoch, 'no failover');
  assert.equal(after.primary.nodeId, 'a');
  for (const [name, s] of Object.entries(p.servers)) {
    const st = s.connectionStats();
    assert.ok(st.evicted + st.timedOut >= 2000 - limits.maxConnections, `${name}: ${JSON.stringify(st)}`);
    t.diagnostic(`${name}: ${JSON.stringify(st)}`);
  }
});

test('a 32 MiB log frame dribbled at the backup is refused on its first bytes; the pair stays protected and serving', async (t) => {
  // Dev mode (no tokens): this is about the frame limit, whichever credential the log route takes.
  const p = await startPair(t, {}, {}, { auth: false });
  const before = await waitProtected(p);
  let n = 0;
  const incr = () => p.incr('k', ++n);
  assert.equal(await incr(), 1);
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const body = new Readable({
    read() {
      if (timer) return;
      // The head of an entry frame declaring 32 MiB, then the body in 16 KiB pieces.
      this.push(Buffer.from([0x02, 0x00, 0x00, 0x16, 1]));
      timer = setInterval(() => {
        sent += 16 * 1024;
        if (sent > 32 * 1024 * 1024) return this.push(null);
        this.push(Buffer.alloc(16 * 1024));
      }, 5);
    },
  });
  t.after(() => clearInterval(timer));
  const h2 = new H2CClient(p.backupUrl);
  t.after(() => h2.close().catch(() => {}));
  const r = await h2.request({
    method: 'POST',
    path: '/v1/vms/vm1/log',
    headers: { 'content-type': 'application/octet-stream' },
    body,
  });
  const reply = (await r.body.json()) as { code: string };
  clearInterval(timer);
  assert.equal(r.statusCode, 413, JSON.stringify(reply));
  assert.equal(reply.code, 'FT_ERR_FRAME_TOO_LARGE');
  assert.ok(sent < 1024 * 1024, `refused after ${sent} bytes of the body`);
  for (let i = 0; i < 10; i++) assert.equal(await incr(), n);
  const after = await waitProtected(p);
  assert.equal(after.primary.epoch, before.primary.epoch, 'no failover');
  assert.ok(after.backup.log.sent > before.backup.log.sent, 'the real log stream goes on');
});
