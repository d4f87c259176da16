import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  GuestHarness, getGuest, encodeKvRequest, decodeKvResponse, decodeKvRequest, KV_LIMITS,
  type KvDataRequest, type KvOp, type KvRequest, type KvResponse,
} from '../src/index.ts';

let tag = 0;
type Untagged<T> = T extends unknown ? Omit<T, 'tag'> : never;

function send(h: GuestHarness, r: Untagged<KvRequest>): KvResponse {
  const t = ++tag;
  const out = h.send(encodeKvRequest({ ...r, tag: t } as KvRequest));
  assert.equal(out.length, 1, 'exactly one answer per request');
  const res = decodeKvResponse(out[0]!);
  assert.equal(res.tag, t, 'the answer echoes the tag');
  return res;
}

function kv(): GuestHarness {
  const h = new GuestHarness(getGuest('kv'));
  assert.equal(h.settle(), 'wfi');
  return h;
}

function open(h: GuestHarness): number {
  const r = send(h, { op: 'open-session' });
  assert.equal(r.status, 'ok');
  const id = Number(r.value);
  assert.ok(Number.isInteger(id) && id > 0, `session id ${r.value}`);
  return id;
}

/** A well-behaved client: one request at a time, each acknowledging every earlier answer. */
class Session {
  seq = 0;
  constructor(readonly h: GuestHarness, readonly id = open(h)) {}
  /** Sends the next request; returns its seq with the answer. */
  next(op: KvOp, key: string, value?: string): KvResponse & { seq: number } {
    const seq = ++this.seq;
    return { ...this.at(seq, op, key, value), seq };
  }
  /** Sends seq (a retry when it was sent before) with ackBelow (default: seq). */
  at(seq: number, op: KvOp, key: string, value?: string, ackBelow = seq): KvResponse {
    return send(this.h, { op, session: this.id, seq, ackBelow, key, ...(value !== undefined ? { value } : {}) });
  }
}

const counter = (h: GuestHarness, key = 'n'): string | null => send(h, { op: 'get', session: 0, seq: 0, ackBelow: 0, key }).value;
const word = (h: GuestHarness, name: string): number => h.cpu.readWord(getGuest('kv').symbols[name]!);

test('kv: put, get, append, incr and missing keys', () => {
  const h = kv();
  const s = new Session(h);
  const req = (op: KvOp, key: string, value?: string) => {
    const { seq: _seq, ...r } = s.next(op, key, value);
    return r;
  };
  assert.deepEqual(req('get', 'x'), { tag, status: 'not-found', value: null });
  assert.deepEqual(req('put', 'x', 'hello'), { tag, status: 'ok', value: 'hello' });
  assert.deepEqual(req('get', 'x'), { tag, status: 'ok', value: 'hello' });
  assert.deepEqual(req('append', 'x', ', world'), { tag, status: 'ok', value: 'hello, world' });
  assert.deepEqual(req('append', 'y', 'new'), { tag, status: 'ok', value: 'new' });
  assert.equal(req('incr', 'n').value, '1');
  assert.equal(req('incr', 'n').value, '2');
  assert.equal(req('incr', 'n', '-5').value, '-3');
  assert.equal(req('incr', 'n', '1000000').value, '999997');
  assert.equal(req('incr', 'x').status, 'not-a-number');
  assert.equal(req('get', 'x').value, 'hello, world', 'a failed incr changes nothing');
  assert.equal(req('put', '', 'empty key').status, 'ok');
  assert.equal(req('get', '').value, 'empty key');
  assert.equal(req('put', 'ü', 'ünïcødé').value, 'ünïcødé');
  assert.equal(req('append', 'x', 'z'.repeat(180)).status, 'too-large');
  assert.equal(req('get', 'x').value, 'hello, world');
});

test('kv: a retried request gets the remembered answer and is applied once', () => {
  const h = kv();
  const a = new Session(h), b = new Session(h);
  assert.notEqual(a.id, b.id);
  assert.equal(a.at(1, 'incr', 'k').value, '1');
  assert.equal(a.at(1, 'incr', 'k').value, '1', 'retry: remembered');
  assert.equal(b.at(1, 'incr', 'k').value, '2', 'another session with the same seq is a new request');
  // Pipelined: seq 2 and 3 in flight, neither acknowledged; retries of both are remembered.
  assert.equal(a.at(2, 'append', 's', 'a', 1).value, 'a');
  assert.equal(a.at(3, 'append', 's', 'b', 1).value, 'ab');
  assert.equal(a.at(1, 'incr', 'k', undefined, 1).value, '1', 'an older unacknowledged request is still remembered');
  assert.equal(a.at(2, 'append', 's', 'a', 1).value, 'a');
  assert.equal(a.at(3, 'append', 's', 'b', 1).value, 'ab');
  assert.equal(counter(h, 'k'), '2');
  assert.equal(counter(h, 's'), 'ab');
  assert.equal(word(h, 'replayed'), 4);
});

test('kv without dedup (the drills\' break-the-rule variant): the same retry is applied again; the default program stays deduplicating', () => {
  const broken = new GuestHarness(getGuest('kv', { dedup: false }));
  assert.equal(broken.settle(), 'wfi');
  assert.notEqual(getGuest('kv', { dedup: false }).id, getGuest('kv').id, 'another program: a pair cannot mix the two');
  assert.equal(getGuest('kv', { dedup: true }), getGuest('kv'));
  const a = new Session(broken);
  assert.equal(a.at(1, 'incr', 'k').value, '1');
  assert.equal(a.at(1, 'incr', 'k').value, '2', 'the retry was applied a second time');
  assert.equal(counter(broken, 'k'), '2');
  assert.throws(() => getGuest('bank', { dedup: false }), /FT_ERR_UNKNOWN_GUEST|unknown guest/);
});

test('kv: a retry after 1,000+ other requests gets the remembered answer and is applied once', () => {
  const h = kv();
  const a = new Session(h);
  const others = Array.from({ length: 8 }, () => new Session(h));
  assert.equal(a.next('incr', 'n').value, '1'); // its answer is "lost"
  for (let i = 0; i < 1200; i++) assert.equal(others[i % 8]!.next('incr', 'n').value, String(i + 2));
  assert.equal(a.at(1, 'incr', 'n').value, '1', 'the retry gets the remembered answer');
  assert.equal(counter(h), '1201', 'and was applied once');
  // A retry also survives thousands of the same session's own later requests, as long as it is unacknowledged.
  const b = new Session(h);
  assert.equal(b.at(1, 'append', 'log', 'x', 1).value, 'x');
  for (let i = 0; i < 3000; i++) assert.equal(others[i % 8]!.next('get', 'log').value, 'x');
  assert.equal(b.at(1, 'append', 'log', 'x', 1).value, 'x');
  assert.equal(counter(h, 'log'), 'x');
});

test('kv: ackBelow forgets: an acknowledged seq is refused (seq-acked), never applied again', () => {
  const h = kv();
  const s = new Session(h);
  assert.equal(s.next('incr', 'n').value, '1');
  assert.equal(s.next('incr', 'n').value, '2'); // seq 2 with ackBelow 2: the answer to 1 is forgotten
  assert.deepEqual({ ...s.at(1, 'incr', 'n', undefined, 1), tag: 0 }, { tag: 0, status: 'seq-acked', value: null });
  assert.equal(s.at(2, 'incr', 'n').value, '2', 'seq 2 is still remembered');
  assert.equal(counter(h), '2');
  // A later, larger ackBelow moves the mark; a smaller one never moves it back.
  assert.equal(s.at(5, 'incr', 'n', undefined, 5).value, '3');
  assert.equal(s.at(2, 'incr', 'n', undefined, 1).status, 'seq-acked');
  assert.equal(s.at(6, 'incr', 'n', undefined, 1).value, '4', 'an old ackBelow is harmless');
  assert.equal(counter(h), '4');
  // ackBelow above seq is a client bug: bad request, nothing changes.
  assert.equal(s.at(7, 'incr', 'n', undefined, 8).status, 'bad-request');
  assert.equal(s.at(7, 'incr', 'n', undefined, 7).value, '5');
  assert.equal(s.at(0, 'incr', 'n', undefined, 0).status, 'bad-request', 'seqs start at 1');
  assert.equal(counter(h), '5');
});

test('kv: unknown, closed and expired sessions are refused and nothing is applied', () => {
  const h = kv();
  const refused = (r: Untagged<KvDataRequest>) => assert.equal(send(h, r).status, 'session-expired', JSON.stringify(r));
  refused({ op: 'incr', session: 12345, seq: 1, ackBelow: 1, key: 'n' });
  refused({ op: 'put', session: 0xffffffff, seq: 1, ackBelow: 1, key: 'n', value: 'v' });
  assert.equal(send(h, { op: 'put', session: 0, seq: 1, ackBelow: 1, key: 'n', value: 'v' }).status, 'bad-request', 'only a get may go without a session');
  assert.equal(counter(h), null);

  const s = new Session(h);
  assert.equal(s.next('incr', 'n').value, '1');
  assert.equal(send(h, { op: 'close-session', session: s.id }).status, 'ok');
  refused({ op: 'incr', session: s.id, seq: 1, ackBelow: 1, key: 'n' });
  refused({ op: 'incr', session: s.id, seq: 2, ackBelow: 2, key: 'n' });
  assert.equal(send(h, { op: 'close-session', session: s.id }).status, 'session-expired');
  // The freed slot is reused with a new generation: the old id stays dead.
  const t = new Session(h);
  assert.equal(t.id & 0xff, s.id & 0xff);
  assert.notEqual(t.id, s.id);
  refused({ op: 'incr', session: s.id, seq: 1, ackBelow: 1, key: 'n' });
  assert.equal(t.next('incr', 'n').value, '2');

  // 256 sessions live at once: one more expires the least recently used.
  const live = [t, ...Array.from({ length: KV_LIMITS.maxSessions - 1 }, () => new Session(h))];
  assert.equal(word(h, 'expired'), 0);
  assert.equal(t.next('incr', 'n').value, '3', 't is used again: live[1] is now the least recently used');
  const victim = live[1]!;
  const extra = new Session(h);
  assert.equal(word(h, 'expired'), 1);
  assert.equal(extra.id & 0xff, victim.id & 0xff, 'the least recently used session made room');
  refused({ op: 'incr', session: victim.id, seq: 1, ackBelow: 1, key: 'n' });
  assert.equal(t.next('incr', 'n').value, '4', 'the other sessions live on');
  assert.equal(counter(h), '4');
});

test('kv: expiry is least recently USED, not oldest, and a retry on an expired session is refused', () => {
  const h = kv();
  const sessions = Array.from({ length: KV_LIMITS.maxSessions }, () => new Session(h));
  const first = sessions[0]!;
  assert.equal(first.at(1, 'incr', 'n').value, '1'); // the oldest session, but now the most recently used
  new Session(h);
  assert.equal(first.at(1, 'incr', 'n').value, '1', 'still live: the retry is deduplicated');
  assert.equal(send(h, { op: 'incr', session: sessions[1]!.id, seq: 1, ackBelow: 1, key: 'n' }).status, 'session-expired', 'sessions[1] was the least recently used');
  // Expire `first` too: open until every other session was used more recently.
  for (let i = 0; i < KV_LIMITS.maxSessions; i++) new Session(h);
  assert.equal(first.at(1, 'incr', 'n').status, 'session-expired', 'its remembered answer died with it; the retry is refused, not re-applied');
  assert.equal(counter(h), '1');
});

test('kv: at most 8 outstanding requests per session', () => {
  const h = kv();
  const s = new Session(h);
  const max = KV_LIMITS.maxOutstanding;
  for (let seq = 1; seq <= max; seq++) assert.equal(s.at(seq, 'incr', 'n', undefined, 1).value, String(seq));
  assert.equal(s.at(max + 1, 'incr', 'n', undefined, 1).status, 'too-many-outstanding');
  assert.equal(counter(h), String(max), 'refused, not applied');
  for (let seq = 1; seq <= max; seq++) assert.equal(s.at(seq, 'incr', 'n', undefined, 1).value, String(seq), 'all eight remembered');
  assert.equal(s.at(max + 1, 'incr', 'n', undefined, 2).value, String(max + 1), 'acknowledging seq 1 makes room');
  assert.equal(s.at(max + 2, 'incr', 'n', undefined, 2).status, 'too-many-outstanding');
  assert.equal(s.at(1, 'incr', 'n', undefined, 1).status, 'seq-acked');
  assert.equal(counter(h), String(max + 1));
});

test('kv: LRU expiry is deterministic: two runs of the same packets end in the same state', () => {
  const run = (): { hash: string; answers: string[] } => {
    const h = kv();
    tag = 0;
    const answers: string[] = [];
    const ss: Session[] = [];
    for (let i = 0; i < 700; i++) {
      if (i % 2 === 0) ss.push(new Session(h));
      const s = ss[(i * 7919) % ss.length]!;
      const r = s.next(i % 3 === 0 ? 'append' : 'incr', `k${i % 5}`, i % 3 === 0 ? 'z' : undefined);
      answers.push(`${s.id}:${r.status}:${r.value}`);
    }
    return { hash: h.cpu.stateHash(), answers };
  };
  const a = run(), b = run();
  assert.ok(a.answers.some((x) => x.includes('session-expired')), 'the run expired sessions');
  assert.deepEqual(b.answers, a.answers);
  assert.equal(b.hash, a.hash);
});

test('kv: garbage packets get a bad-request answer (or none without a tag) and the server keeps serving', () => {
  const h = kv();
  assert.deepEqual(h.send(new Uint8Array([1, 2])), [], 'no tag, no answer');
  const bad = decodeKvResponse(h.send(new Uint8Array([7, 0, 0, 0, 9, 200]))[0]!);
  assert.deepEqual(bad, { tag: 7, status: 'bad-request', value: null });
  const unknownOp = encodeKvRequest({ tag: 8, op: 'get', session: 0, seq: 0, ackBelow: 0, key: 'k' });
  unknownOp[4] = 99;
  assert.equal(decodeKvResponse(h.send(unknownOp)[0]!).status, 'bad-request');
  const s = new Session(h);
  fc.assert(fc.property(fc.uint8Array({ minLength: 4, maxLength: 1200 }), (bytes) => {
    const out = h.send(bytes);
    assert.equal(out.length, 1);
    assert.equal(decodeKvResponse(out[0]!).tag, new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true));
  }), { numRuns: 200 });
  assert.equal(s.next('put', 'alive', 'yes').value, 'yes');
});

test('kv: random workloads with retries, pipelining and acks match a reference model', () => {
  const step = fc.record({
    op: fc.constantFrom('get', 'put', 'incr', 'append'),
    key: fc.constantFrom('a', 'b', 'c', 'longer-key-name'),
    value: fc.string({ maxLength: 12 }),
    client: fc.nat(2),
    retry: fc.nat(12), // 0..3: retry one of the client's outstanding requests
    ack: fc.boolean(), // receive the answers: acknowledge everything sent so far
  });
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 80 }), (steps) => {
    const h = kv();
    const clients = [0, 1, 2].map(() => ({ s: new Session(h), low: 1, sent: new Map<number, Untagged<KvDataRequest>>() }));
    const model = new Map<string, string>();
    const answers = new Map<string, KvResponse>();
    for (const o of steps) {
      const c = clients[o.client]!;
      const outstanding = [...c.sent.keys()].filter((q) => q >= c.low);
      let r: Untagged<KvDataRequest>;
      if (o.retry < 4 && outstanding.length) r = { ...c.sent.get(outstanding[o.retry % outstanding.length]!)!, ackBelow: c.low };
      else {
        if (c.s.seq + 1 - c.low >= KV_LIMITS.maxOutstanding) c.low = c.s.seq + 1; // the client waits for its answers first
        const value = o.op === 'incr' ? String(o.value.length) : o.value;
        r = { op: o.op as KvOp, session: c.s.id, seq: ++c.s.seq, ackBelow: c.low, key: o.key, ...(o.op === 'get' ? {} : { value }) };
        c.sent.set(r.seq, r);
      }
      const id = `${r.session}/${r.seq}`;
      const got = send(h, r);
      const remembered = answers.get(id);
      if (remembered) {
        assert.deepEqual({ ...got, tag: 0 }, { ...remembered, tag: 0 }, `retry ${id}`);
      } else {
        let want: KvResponse;
        const cur = model.get(r.key);
        if (r.op === 'get') want = cur === undefined ? { tag: 0, status: 'not-found', value: null } : { tag: 0, status: 'ok', value: cur };
        else if (r.op === 'put') { model.set(r.key, r.value!); want = { tag: 0, status: 'ok', value: r.value! }; }
        else if (r.op === 'append') {
          const nv = (cur ?? '') + r.value!;
          if (new TextEncoder().encode(nv).length > 188) want = { tag: 0, status: 'too-large', value: null };
          else { model.set(r.key, nv); want = { tag: 0, status: 'ok', value: nv }; }
        } else {
          const base = cur === undefined ? 0 : /^-?[0-9]+$/.test(cur) ? Number(cur) : NaN;
          if (Number.isNaN(base)) want = { tag: 0, status: 'not-a-number', value: null };
          else { const nv = String((base + Number(r.value || '1')) | 0); model.set(r.key, nv); want = { tag: 0, status: 'ok', value: nv }; }
        }
        assert.deepEqual({ ...got, tag: 0 }, want, `${r.op} ${r.key}`);
        answers.set(id, got);
      }
      if (o.ack) c.low = c.s.seq + 1;
    }
  }), { numRuns: 40 });
});

test('kv: request codec round trip and limits', () => {
  const r: KvRequest = { tag: 0xfffffffe, op: 'append', session: 0x1234_5678, seq: 0xffffffff, ackBelow: 7, key: 'ü-key', value: 'v' };
  assert.deepEqual(decodeKvRequest(encodeKvRequest(r)), r);
  assert.deepEqual(decodeKvRequest(encodeKvRequest({ tag: 3, op: 'open-session' })), { tag: 3, op: 'open-session' });
  assert.deepEqual(decodeKvRequest(encodeKvRequest({ tag: 4, op: 'close-session', session: 9 })), { tag: 4, op: 'close-session', session: 9 });
  assert.throws(() => encodeKvRequest({ ...r, key: 'k'.repeat(61) }), { code: 'FT_ERR_KV_REQUEST' });
  assert.throws(() => encodeKvRequest({ ...r, value: 'v'.repeat(189) }), { code: 'FT_ERR_KV_REQUEST' });
  assert.throws(() => encodeKvRequest({ ...r, seq: 2 ** 32 }), { code: 'FT_ERR_KV_REQUEST' });
  assert.throws(() => encodeKvRequest({ ...r, session: -1 }), { code: 'FT_ERR_KV_REQUEST' });
  assert.throws(() => decodeKvResponse(new Uint8Array(3)), { code: 'FT_ERR_KV_PACKET' });
});
