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

/** A backup stand-in that holds entries like a real one: contiguous, no duplicates. */
function recordingSink() {
  const held: LogEntry[] = [];
  const dupes: number[] = [];
  let epoch = 0;
  let opens = 0;
  const sink: LogSink = {
    nodeId: 'b',
    open(hello) {
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
          return { type: 'ack', epoch, seq: held.length, icount: held.at(-1)?.icount ?? 0 };
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
    fastify: { http2: true, http2SessionTimeout: 600_000, forceCloseConnections: true },
  });
  registerLogReceiver(app, { vmId: 'vm1', sink });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const a = app.server.address();
  return { app, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` };
}

const entry = (seq: number): Uint8Array =>
  encodeFrame({ type: 'entry', entry: { kind: 'nic', seq, icount: seq * 10, packet: new Uint8Array(200).fill(seq & 0xff) } });

test('entries cross one stream in order and every one is acknowledged', async (t) => {
  const rec = recordingSink();
  const b = await backup(t, rec.sink);
  const acks: number[] = [];
  const sender = new LogSender({ url: b.url, vmId: 'vm1', nodeId: 'a', epoch: 1, inflightBytesMax: 16 * 1024, onAck: (a) => acks.push(a.seq) });
  t.after(() => sender.close());
  sender.start();
  for (let s = 1; s <= 3000; s++) sender.append(s, entry(s));
  while (sender.ackedSeq < 3000) await sleep(10);
  assert.equal(rec.held.length, 3000);
  assert.deepEqual(rec.dupes, []);
  assert.equal(rec.held[2999]!.icount, 30000);
  assert.equal(sender.unackedBytes, 0);
  assert.equal(sender.streams, 1, 'one long-lived stream');
  assert.ok(acks.length > 0 && acks.every((a, i) => i === 0 || a >= acks[i - 1]!), 'acks never go backwards');
});

test('a broken stream is reopened and resent from the last entry the backup holds', async (t) => {
  const rec = recordingSink();
  const b = await backup(t, rec.sink);
  const proxy = await TcpProxy.start(b.url);
  t.after(() => proxy.close());
  const sender = new LogSender({ url: proxy.url, vmId: 'vm1', nodeId: 'a', epoch: 1, inflightBytesMax: 8 * 1024, onAck: () => {} });
  t.after(() => sender.close());
  sender.start();
  let seq = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 400; i++) sender.append(++seq, entry(seq));
    while (sender.ackedSeq < seq - 200) await sleep(2);
    proxy.reset();
  }
  while (sender.ackedSeq < seq) await sleep(10);
  assert.equal(rec.held.length, seq, 'no entry lost');
  assert.ok(rec.held.every((e, i) => e.seq === i + 1));
  assert.ok(sender.streams > 1 && rec.opens() > 1, `reconnected (${sender.streams} streams)`);
});

test('backpressure: no more than inflightBytesMax bytes are on the wire unacknowledged', async (t) => {
  let received = 0;
  const sink: LogSink = {
    nodeId: 'b',
    open: () => ({
      heldSeq: 0,
      frames(frames) {
        received += frames.length;
        return undefined; // never acks until the test says so
      },
      closed() {},
    }),
  };
  const b = await backup(t, sink);
  const sender = new LogSender({ url: b.url, vmId: 'vm1', nodeId: 'a', epoch: 1, inflightBytesMax: 4096, onAck: () => {} });
  t.after(() => sender.close());
  sender.start();
  for (let s = 1; s <= 500; s++) sender.append(s, entry(s));
  await sleep(300);
  const maxOutstanding = received;
  const frame = entry(1).byteLength;
  assert.ok(maxOutstanding > 0 && maxOutstanding * frame <= 4096 + frame, `${maxOutstanding} frames (${maxOutstanding * frame} bytes) outstanding`);
  assert.equal(sender.unackedBytes, 500 * frame, 'everything unacknowledged is kept for resend');
});

test('malformed log frames and refused hellos get a clear 4xx and leave the backup as it was', async (t) => {
  const rec = recordingSink();
  const b = await backup(t, rec.sink);
  // Establish some state first.
  const sender = new LogSender({ url: b.url, vmId: 'vm1', nodeId: 'a', epoch: 2, onAck: () => {} });
  sender.start();
  for (let s = 1; s <= 10; s++) sender.append(s, entry(s));
  while (sender.ackedSeq < 10) await sleep(5);
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
