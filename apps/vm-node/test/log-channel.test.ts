import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { H2CClient } from 'undici';
import { encodeFrame, encodeFrames, type Frame, type LogEntry } from '@mr/vmft-protocol';
import { createRegistry } from '@mr/observability';
import { createService } from '@mr/service-kit';
import { LogSender, registerLogReceiver, type LogSink } from '../src/log-channel.ts';
import { ERR_STALE_EPOCH } from '../src/errors.ts';
import { TcpProxy } from '../src/testing/tcp-proxy.ts';
import { dualProtocolServerFactory } from '../src/dual-server.ts';

/** A backup stand-in that holds entries like a real one: contiguous, no duplicates. */
function recordingSink() {
  const held: LogEntry[] = [];
  const dupes: number[] = [];
  let epoch = 0;
  let opens = 0;
  const sink: LogSink = {
    nodeId: 'b',
    async open(hello, _peer, send) {
      if (hello.epoch < epoch) throw ERR_STALE_EPOCH(hello.epoch, epoch, 'a');
      epoch = hello.epoch;
      opens++;
      return {
        heldSeq: held.length,
        frames(frames: Frame[]) {
          for (const f of frames) {
            if (f.type !== 'entry') continue;
            if (f.entry.seq <= held.length) dupes.push(f.entry.seq);
            else if (f.entry.seq !== held.length + 1) throw new Error(`gap: got ${f.entry.seq} after ${held.length}`);
            else held.push(f.entry);
          }
          send({ type: 'ack', epoch, seq: held.length, icount: held.at(-1)?.icount ?? 0 });
        },
        closed() {},
      };
    },
  };
  return { sink, held, dupes, opens: () => opens };
}

async function backup(t: { after(fn: () => unknown): void }, sink: LogSink) {
  const app = await createService({
    name: 'vm-node-test',
    registry: createRegistry({ service: 't', defaultMetrics: false }),
    logLevel: false,
    fastify: { http2: true, http2SessionTimeout: 600_000, forceCloseConnections: true, serverFactory: dualProtocolServerFactory({ http2SessionTimeoutMs: 600_000 }) },
  });
  registerLogReceiver(app, { vmId: 'vm1', sink });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const a = app.server.address();
  return { app, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` };
}

const entry = (seq: number): Uint8Array =>
  encodeFrame({ type: 'entry', entry: { kind: 'nic', seq, icount: seq * 10, packet: new Uint8Array(200).fill(seq & 0xff) } });

/**
 * The primary's side of the contract the FT core keeps (it retains what is
 * unacknowledged and re-emits it after the backup's hello), reduced to a log
 * array, so the transport can be tested on its own.
 */
function primaryLog(t: { after(fn: () => unknown): void }, url: string, entries: number) {
  const log = Array.from({ length: entries }, (_, i) => entry(i + 1));
  let acked = 0;
  const acks: number[] = [];
  const states: string[] = [];
  const sender: LogSender = new LogSender({
    url,
    vmId: 'vm1',
    hello: () => ({ type: 'hello', epoch: 1, seq: acked, vmId: 'vm1', nodeId: 'a' }),
    onHello: (h) => {
      acked = Math.max(acked, h.seq);
      for (let s = acked + 1; s <= log.length; s++) sender.send(log[s - 1]!);
    },
    onAck: (a) => {
      acked = Math.max(acked, a.seq);
      acks.push(a.seq);
    },
    onState: (s) => states.push(s),
  });
  t.after(() => sender.close());
  return { sender, acks, states, acked: () => acked };
}

test('entries cross one stream in order and every one is acknowledged', async (t) => {
  const rec = recordingSink();
  const b = await backup(t, rec.sink);
  const p = primaryLog(t, b.url, 3000);
  p.sender.start();
  while (p.acked() < 3000) await sleep(10);
  assert.equal(rec.held.length, 3000);
  assert.deepEqual(rec.dupes, []);
  assert.equal(rec.held[2999]!.icount, 30000);
  assert.equal(p.sender.streams, 1, 'one long-lived stream');
  assert.deepEqual(p.states, ['connecting', 'connected']);
  assert.ok(p.acks.length > 0 && p.acks.every((a, i) => i === 0 || a >= p.acks[i - 1]!), 'acks never go backwards');
});

test("a broken stream is reopened; the backup's hello says where to resume, so nothing is lost or sent twice", async (t) => {
  const rec = recordingSink();
  const b = await backup(t, rec.sink);
  const proxy = await TcpProxy.start(b.url);
  t.after(() => proxy.close());
  const p = primaryLog(t, proxy.url, 20000);
  p.sender.start();
  for (let i = 0; i < 4; i++) {
    const before = p.acked();
    while (p.acked() === before) await sleep(1);
    proxy.reset();
  }
  while (p.acked() < 20000) await sleep(10);
  assert.equal(rec.held.length, 20000, 'no entry lost');
  assert.ok(rec.held.every((e, i) => e.seq === i + 1));
  assert.ok(p.sender.streams > 1 && rec.opens() > 1, `reconnected (${p.sender.streams} streams)`);
  assert.ok(p.states.includes('disconnected'));
  assert.equal(p.sender.send(entry(1)) || p.sender.up, true);
});

test('backpressure: a slow backup makes frames wait in the sender, in order, none dropped', async (t) => {
  let received = 0;
  let last = 0;
  let outOfOrder = 0;
  const sink: LogSink = {
    nodeId: 'b',
    open: async (_hello, _peer, send) => ({
      heldSeq: 0,
      frames(frames) {
        // A slow consumer: burn time per batch.
        const until = Date.now() + 2;
        while (Date.now() < until);
        for (const f of frames) {
          if (f.type !== 'entry') continue;
          if (f.entry.seq !== last + 1) outOfOrder++;
          last = f.entry.seq;
          received++;
        }
        send({ type: 'ack', epoch: 1, seq: last, icount: 0 });
      },
      closed() {},
    }),
  };
  const b = await backup(t, sink);
  let maxPending = 0;
  const big = (seq: number) => encodeFrame({ type: 'entry', entry: { kind: 'nic', seq, icount: seq, packet: new Uint8Array(16 * 1024) } });
  const sender: LogSender = new LogSender({
    url: b.url,
    vmId: 'vm1',
    hello: () => ({ type: 'hello', epoch: 1, seq: 0, vmId: 'vm1', nodeId: 'a' }),
    onHello: () => {
      for (let s = 1; s <= 1000; s++) {
        sender.send(big(s));
        maxPending = Math.max(maxPending, sender.pendingBytes);
      }
    },
    onAck: () => {},
  });
  t.after(() => sender.close());
  sender.start();
  while (received < 1000) await sleep(10);
  assert.equal(outOfOrder, 0);
  assert.ok(maxPending > 0, 'frames waited in the sender instead of being pushed past the highWaterMark');
  assert.equal(sender.pendingBytes, 0);
});

test('a refused hello (older epoch) leaves the live stream alone', async (t) => {
  const rec = recordingSink();
  const b = await backup(t, rec.sink);
  const p = primaryLog(t, b.url, 100);
  p.sender.start();
  while (p.acked() < 100) await sleep(5);
  const h2 = new H2CClient(b.url);
  t.after(() => h2.close());
  const r = await h2.request({ method: 'POST', path: '/v1/vms/vm1/log', body: Buffer.from(encodeFrames([{ type: 'hello', epoch: 0, seq: 0, vmId: 'vm1', nodeId: 'old' }])), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(r.statusCode, 409);
  await r.body.text();
  p.sender.send(entry(101));
  while (p.acked() < 101) await sleep(5);
  assert.equal(rec.held.length, 101);
  assert.equal(p.sender.streams, 1, 'the primary never had to reconnect');
  assert.equal(rec.opens(), 1);
});

test('sends while no stream is up are dropped (the core resends after link-up)', async (t) => {
  const sender = new LogSender({ url: 'http://127.0.0.1:9', vmId: 'vm1', hello: () => ({ type: 'hello', epoch: 1, seq: 0, vmId: 'vm1', nodeId: 'a' }), onHello: () => {}, onAck: () => {} });
  t.after(() => sender.close());
  assert.equal(sender.send(entry(1)), false);
  assert.throws(() => new LogSender({ url: 'https://x', vmId: 'v', hello: () => ({ type: 'hello', epoch: 1, seq: 0, vmId: 'v', nodeId: 'a' }), onHello: () => {}, onAck: () => {} }), /h2c/);
});

test('malformed log frames and refused hellos get a clear 4xx and leave the backup as it was', async (t) => {
  const rec = recordingSink();
  const b = await backup(t, rec.sink);
  // Establish some state first.
  let acked = 0;
  const sender: LogSender = new LogSender({
    url: b.url,
    vmId: 'vm1',
    hello: () => ({ type: 'hello', epoch: 2, seq: 0, vmId: 'vm1', nodeId: 'a' }),
    onHello: () => {
      for (let s = 1; s <= 10; s++) sender.send(entry(s));
    },
    onAck: (a) => (acked = a.seq),
  });
  sender.start();
  while (acked < 10) await sleep(5);
  await sender.close();
  const client = new H2CClient(b.url);
  t.after(() => client.close());
  const post = async (body: Uint8Array, path = '/v1/vms/vm1/log', type = 'application/octet-stream') => {
    const r = await client.request({ method: 'POST', path, body: Buffer.from(body), headers: { 'content-type': type } });
    return { status: r.statusCode, body: (await r.body.json()) as { code: string; message: string } };
  };
  const garbage = await post(new Uint8Array([0, 0, 0, 3, 99, 1, 2]));
  assert.equal(garbage.status, 400);
  assert.equal(garbage.body.code, 'FT_ERR_BAD_FRAME');
  const huge = await post(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1]));
  assert.equal(huge.status, 413);
  const truncated = await post(new Uint8Array([0, 0, 0, 50, 1, 2]));
  assert.equal(truncated.status, 400);
  assert.equal(truncated.body.code, 'FT_ERR_TRUNCATED');
  const noHello = await post(entry(11));
  assert.equal(noHello.status, 400);
  assert.match(noHello.body.message, /first frame must be a hello/);
  const stale = await post(encodeFrames([{ type: 'hello', epoch: 1, seq: 0, vmId: 'vm1', nodeId: 'old' }]));
  assert.equal(stale.status, 409);
  assert.equal(stale.body.code, 'FT_ERR_STALE_EPOCH');
  const otherVm = await post(encodeFrames([{ type: 'hello', epoch: 2, seq: 0, vmId: 'vm1', nodeId: 'a' }]), '/v1/vms/nope/log');
  assert.equal(otherVm.status, 404);
  const wrongType = await post(new Uint8Array([1, 2, 3]), '/v1/vms/vm1/log', 'text/plain');
  assert.ok(wrongType.status >= 400 && wrongType.status < 500, `text/plain -> ${wrongType.status}`);
  assert.equal(rec.held.length, 10, 'state unchanged');
  assert.deepEqual(rec.dupes, []);
});
