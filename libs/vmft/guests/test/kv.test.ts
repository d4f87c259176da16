import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GuestHarness, getGuest, encodeKvRequest, decodeKvResponse, decodeKvRequest, type KvRequest, type KvResponse } from '../src/index.ts';

let tag = 0;
function call(h: GuestHarness, r: Omit<KvRequest, 'tag'>): KvResponse {
  const t = ++tag;
  const out = h.send(encodeKvRequest({ ...r, tag: t }));
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

test('kv: put, get, append, incr and missing keys', () => {
  const h = kv();
  let n = 0;
  const req = (op: KvRequest['op'], key: string, value?: string) => call(h, { op, clientId: 'c1', requestId: `r${++n}`, key, ...(value !== undefined ? { value } : {}) });
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
  const first = call(h, { op: 'incr', clientId: 'c1', requestId: 'r1', key: 'k' });
  assert.equal(first.value, '1');
  const retry = call(h, { op: 'incr', clientId: 'c1', requestId: 'r1', key: 'k' });
  assert.equal(retry.value, '1');
  assert.equal(call(h, { op: 'incr', clientId: 'c2', requestId: 'r1', key: 'k' }).value, '2', 'another client with the same request id is a new request');
  assert.equal(call(h, { op: 'append', clientId: 'c1', requestId: 'r2', key: 's', value: 'a' }).value, 'a');
  assert.equal(call(h, { op: 'incr', clientId: 'c1', requestId: 'r1', key: 'k' }).value, '1', 'an older request is still remembered');
  assert.equal(call(h, { op: 'append', clientId: 'c1', requestId: 'r2', key: 's', value: 'a' }).value, 'a');
  assert.equal(call(h, { op: 'get', clientId: 'c3', requestId: 'g', key: 'k' }).value, '2');
  assert.equal(call(h, { op: 'get', clientId: 'c3', requestId: 'g2', key: 's' }).value, 'a');
});

test('kv: garbage packets get a bad-request answer (or none without a tag) and the server keeps serving', () => {
  const h = kv();
  assert.deepEqual(h.send(new Uint8Array([1, 2])), [], 'no tag, no answer');
  const bad = decodeKvResponse(h.send(new Uint8Array([7, 0, 0, 0, 9, 200]))[0]!);
  assert.deepEqual(bad, { tag: 7, status: 'bad-request', value: null });
  const unknownOp = encodeKvRequest({ tag: 8, op: 'get', clientId: 'c', requestId: 'r', key: 'k' });
  unknownOp[4] = 99;
  assert.equal(decodeKvResponse(h.send(unknownOp)[0]!).status, 'bad-request');
  fc.assert(fc.property(fc.uint8Array({ minLength: 4, maxLength: 1200 }), (bytes) => {
    const out = h.send(bytes);
    assert.equal(out.length, 1);
    assert.equal(decodeKvResponse(out[0]!).tag, new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true));
  }), { numRuns: 200 });
  assert.equal(call(h, { op: 'put', clientId: 'c9', requestId: 'after', key: 'alive', value: 'yes' }).value, 'yes');
});

test('kv: random workloads with retries match a reference model', () => {
  const op = fc.record({
    op: fc.constantFrom('get', 'put', 'incr', 'append'),
    key: fc.constantFrom('a', 'b', 'c', 'longer-key-name'),
    value: fc.string({ maxLength: 12 }),
    client: fc.constantFrom('c1', 'c2', 'c3'),
    retry: fc.boolean(),
  });
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
    const h = kv();
    const model = new Map<string, string>();
    const answers = new Map<string, KvResponse>();
    let seq = 0;
    let last: { r: Omit<KvRequest, 'tag'>; id: string } | null = null;
    for (const o of ops) {
      let r: Omit<KvRequest, 'tag'>;
      if (o.retry && last) r = last.r;
      else {
        const value = o.op === 'incr' ? String(o.value.length) : o.value;
        r = { op: o.op as KvRequest['op'], clientId: o.client, requestId: `r${++seq}`, key: o.key, ...(o.op === 'get' ? {} : { value }) };
      }
      const id = `${r.clientId}/${r.requestId}`;
      const got = call(h, r);
      const remembered = answers.get(id);
      if (remembered) {
        assert.deepEqual({ ...got, tag: 0 }, { ...remembered, tag: 0 });
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
      last = { r, id };
    }
  }), { numRuns: 40 });
});

test('kv: request codec round trip and limits', () => {
  const r: KvRequest = { tag: 0xfffffffe, op: 'append', clientId: 'client-ü', requestId: 'r-1', key: 'k', value: 'v' };
  assert.deepEqual(decodeKvRequest(encodeKvRequest(r)), r);
  assert.throws(() => encodeKvRequest({ ...r, key: 'k'.repeat(61) }), { code: 'FT_ERR_KV_REQUEST' });
  assert.throws(() => encodeKvRequest({ ...r, value: 'v'.repeat(189) }), { code: 'FT_ERR_KV_REQUEST' });
  assert.throws(() => encodeKvRequest({ ...r, clientId: 'c'.repeat(40), requestId: 'r'.repeat(23) }), { code: 'FT_ERR_KV_REQUEST' });
  assert.throws(() => decodeKvResponse(new Uint8Array(3)), { code: 'FT_ERR_KV_PACKET' });
});

test('kv: after thousands of requests the recent ones are still remembered (oldest entries are evicted)', () => {
  const h = kv();
  const N = 3000;
  for (let i = 0; i < N; i++) assert.equal(call(h, { op: 'incr', clientId: `c${i % 7}`, requestId: `r${i}`, key: 'n' }).value, String(i + 1));
  for (let i = N - 200; i < N; i++) {
    assert.equal(call(h, { op: 'incr', clientId: `c${i % 7}`, requestId: `r${i}`, key: 'n' }).value, String(i + 1), `retry of r${i}`);
  }
  assert.equal(call(h, { op: 'get', clientId: 'x', requestId: 'y', key: 'n' }).value, String(N));
});
