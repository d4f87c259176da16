import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Value } from 'typebox/value';
import { ClientRequest, TasRequest, VmStatus } from '../src/index.ts';

test('client request schema accepts the contract body and refuses junk', () => {
  assert.ok(Value.Check(ClientRequest, { session: 257, seq: 17, ackBelow: 17, op: 'incr', key: 'x' }));
  assert.ok(Value.Check(ClientRequest, { session: 257, seq: 18, ackBelow: 1, op: 'put', key: 'x', value: 'v' }));
  assert.ok(Value.Check(ClientRequest, { op: 'get', key: 'x' }), 'a get needs no session');
  assert.ok(!Value.Check(ClientRequest, { session: 257, seq: 17, ackBelow: 17, op: 'delete', key: 'x' }));
  assert.ok(!Value.Check(ClientRequest, { session: 0, seq: 17, ackBelow: 17, op: 'get', key: 'x' }));
  assert.ok(!Value.Check(ClientRequest, { session: 257, seq: 0, ackBelow: 1, op: 'get', key: 'x' }));
  assert.ok(!Value.Check(ClientRequest, { session: 2 ** 32, seq: 1, ackBelow: 1, op: 'get', key: 'x' }));
  assert.ok(!Value.Check(ClientRequest, { session: 257, seq: 1, ackBelow: 1, op: 'get', key: 'x', extra: 1 }));
  assert.ok(!Value.Check(ClientRequest, { clientId: 'c1', requestId: 'r17', op: 'incr', key: 'x' }), 'the pre-session body is refused');
});

test('status and tas schemas', () => {
  assert.ok(Value.Check(TasRequest, { epoch: 2, nodeId: 'b' }));
  assert.ok(!Value.Check(TasRequest, { epoch: 0, nodeId: 'b' }));
  const status = {
    vmId: 'vm1', nodeId: 'p', role: 'primary', live: true, epoch: 1, icount: 10,
    log: { sent: 3, acked: 2, unackedBytes: 22, bytesTotal: 66 },
    outputs: { held: 1, released: 4, suppressed: 0 },
    peer: { state: 'connected', silentTicks: 0, icount: 8, lagInstructions: 2 },
    hash: { icount: 8, value: 'abc' },
  };
  assert.ok(Value.Check(VmStatus, status));
  assert.ok(!Value.Check(VmStatus, { ...status, role: 'leader' }));
});
