/**
 * The fault proxy over real loopback sockets: an echo server behind it, a
 * client in front, each fault switched on and off while connections are open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { FaultProxy, ERR_PROXY_CONFIG } from '../src/fault-proxy.ts';

async function echoServer(t: { after(fn: () => unknown): void }): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** A client socket that collects what it receives. */
class Conn {
  readonly sock: net.Socket;
  received = Buffer.alloc(0);
  error: (Error & { code?: string }) | undefined;
  closed = false;
  constructor(port: number) {
    this.sock = net.connect({ host: '127.0.0.1', port });
    this.sock.on('data', (b: Buffer) => (this.received = Buffer.concat([this.received, b])));
    this.sock.on('error', (e) => (this.error = e));
    this.sock.on('close', () => (this.closed = true));
  }
  async ready(): Promise<this> {
    await once(this.sock, 'connect');
    return this;
  }
  /** Waits until `n` bytes arrived; resolves with the ms it took, or rejects after `ms`. */
  async until(n: number, ms: number): Promise<number> {
    const t0 = performance.now();
    while (this.received.length < n) {
      if (performance.now() - t0 > ms) throw new Error(`got ${this.received.length} of ${n} bytes in ${ms} ms`);
      if (this.closed) throw new Error(`closed after ${this.received.length} of ${n} bytes (${this.error?.code ?? 'no error'})`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return performance.now() - t0;
  }
}

async function setup(t: { after(fn: () => unknown): void }) {
  const target = await echoServer(t);
  const proxy = await FaultProxy.start(target, 'test');
  const conns: Conn[] = [];
  t.after(async () => {
    for (const c of conns) c.sock.destroy();
    await proxy.close();
  });
  const connect = async () => {
    const c = new Conn(proxy.port);
    conns.push(c);
    return c.ready();
  };
  return { proxy, connect };
}

test('no fault: bytes pass both ways unchanged', async (t) => {
  const { connect } = await setup(t);
  const c = await connect();
  const data = Buffer.from('hello through the proxy '.repeat(5000));
  c.sock.write(data);
  await c.until(data.length, 5000);
  assert.ok(c.received.equals(data));
});

test('delay: each direction waits delayMs, applied to an open connection; healing removes it', async (t) => {
  const { proxy, connect } = await setup(t);
  const c = await connect();
  c.sock.write('warm');
  await c.until(4, 2000);
  proxy.set({ delayMs: 150 });
  c.sock.write('ping');
  const ms = await c.until(8, 3000);
  assert.ok(ms >= 290, `round trip ${ms.toFixed(0)} ms, want >= 2 x 150`);
  proxy.set({});
  c.sock.write('fast');
  const fast = await c.until(12, 3000);
  assert.ok(fast < 150, `after heal ${fast.toFixed(0)} ms`);
});

test('bandwidth: 24 KiB through a 64 KiB/s limit (each way) takes about 2 x 0.375 s', async (t) => {
  const { proxy, connect } = await setup(t);
  proxy.set({ bytesPerSec: 64 * 1024 });
  const c = await connect();
  const data = Buffer.alloc(24 * 1024, 7);
  c.sock.write(data);
  const ms = await c.until(data.length, 5000);
  assert.ok(ms >= 600, `took ${ms.toFixed(0)} ms`);
  assert.ok(c.received.equals(data));
});

test('blackhole: nothing passes while it lasts, the held bytes flow on heal, the connection survives', async (t) => {
  const { proxy, connect } = await setup(t);
  const c = await connect();
  proxy.set({ blackhole: true });
  c.sock.write('held');
  await assert.rejects(c.until(4, 300), /got 0 of 4/);
  const late = await connect();
  late.sock.write('new');
  await assert.rejects(late.until(3, 100), /got 0 of 3/);
  proxy.set({});
  await c.until(4, 2000);
  await late.until(3, 2000);
  assert.equal(c.received.toString(), 'held');
  assert.equal(c.closed, false);
});

test('drop: bytes sent meanwhile are lost; on heal that connection is reset, a new one works', async (t) => {
  const { proxy, connect } = await setup(t);
  const c = await connect();
  proxy.set({ drop: true });
  c.sock.write('lost');
  await assert.rejects(c.until(4, 300), /got 0 of 4/);
  proxy.set({});
  await assert.rejects(c.until(4, 2000), /closed after 0 of 4 .*ECONNRESET/);
  const d = await connect();
  d.sock.write('ok');
  await d.until(2, 2000);
});

test('reset: open connections get a RST, new ones too, until healed', async (t) => {
  const { proxy, connect } = await setup(t);
  const c = await connect();
  c.sock.write('x');
  await c.until(1, 2000);
  proxy.set({ reset: true });
  await assert.rejects(c.until(2, 2000), /closed .*ECONNRESET/);
  const d = new Conn(proxy.port);
  d.sock.write('y');
  await assert.rejects(d.until(1, 2000), /closed .*ECONNRESET/);
  d.sock.destroy();
  proxy.set({});
  const e = await connect();
  e.sock.write('z');
  await e.until(1, 2000);
  assert.ok(proxy.stats.reset >= 2);
});

test('bad fault settings are refused with a coded error and change nothing', async (t) => {
  const { proxy } = await setup(t);
  proxy.set({ delayMs: 5 });
  for (const bad of [{ delayMs: -1 }, { delayMs: Number.NaN }, { delayMs: 60_001 }, { bytesPerSec: 10 }]) {
    assert.throws(() => proxy.set(bad), (e: { code: string }) => e.code === ERR_PROXY_CONFIG.code);
  }
  assert.deepEqual(proxy.fault, { delayMs: 5 });
});

test('taps: the matching reply is held until release (skip counts matches), a reset tap drops its reply, an observing tap changes nothing', async (t) => {
  const { proxy, connect } = await setup(t);
  const a = await connect();
  const b = await connect();
  // The echo server answers each request with its bytes: the reply to "incr 2" is "incr 2".
  const hold = proxy.tap({ request: /incr (?<n>\d)/, effect: 'hold', skip: 1 });
  a.sock.write('get 1');
  await a.until(5, 2000);
  a.sock.write('incr 1');
  await a.until(11, 2000);
  b.sock.write('incr 2');
  const hit = await hold.hit;
  assert.deepEqual(hit.groups, { n: '2' });
  await assert.rejects(b.until(6, 300), /got 0 of 6/);
  a.sock.write('incr 3');
  await a.until(17, 2000);
  assert.equal(proxy.release(), 1);
  await b.until(6, 2000);
  assert.equal(b.received.toString(), 'incr 2');

  const observed = proxy.tap({ reply: /put/, effect: 'observe' });
  const reset = proxy.tap({ request: /incr/, effect: 'reset' });
  a.sock.write('put 4');
  assert.equal((await observed.hit).text, 'put');
  await a.until(22, 2000);
  a.sock.write('incr 5');
  await reset.hit;
  await assert.rejects(a.until(28, 2000), /closed after 22 of 28 .*ECONNRESET/);
  const cancelled = proxy.tap({ effect: 'reset' });
  cancelled.cancel();
  const c = await connect();
  c.sock.write('incr 6');
  await c.until(6, 2000);
});
