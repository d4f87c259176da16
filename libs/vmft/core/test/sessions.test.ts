/**
 * Client sessions of the kv guest under replication: a primary and a backup
 * (the real FtReplica over the real CPU) agree on the session table, because
 * it is guest memory — opening more sessions than the guest keeps expires the
 * same least recently used one on both, retries are answered from memory on
 * both, and the state hashes are equal at the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cpu } from '@mr/vmft-cpu';
import { getGuest, encodeKvRequest, decodeKvResponse, KV_LIMITS, type KvRequest } from '@mr/vmft-guests';
import type { LogEntry } from '@mr/vmft-protocol';
import { FtReplica } from '../src/index.ts';

test('sessions replicate: LRU expiry, retries and acks give the backup the primary state hash', () => {
  const program = getGuest('kv');
  let r = 7;
  const random = (): number => (r = (Math.imul(r, 1664525) + 1013904223) >>> 0);
  const common = { vmId: 'vm1', random, checkpointEvery: 1, heartbeatTicks: 1, suspectTicks: 1000 };
  const p = new FtReplica({ ...common, nodeId: 'p', role: 'primary', machine: new Cpu(program) });
  const b = new FtReplica({ ...common, nodeId: 'b', role: 'backup', machine: new Cpu(program) });
  p.step({ type: 'tas-result', epoch: 1, won: true });
  p.advance();
  b.step({ type: 'link-up', epoch: 1, seq: 0 });
  p.step({ type: 'link-up', epoch: 1, seq: b.hello().seq });
  const answers = new Map<number, { status: string; value: string | null }>();
  const wire: LogEntry[] = [];
  let now = 1_000_000;
  let tag = 0;
  /** One request through the pair: the primary runs it, the backup replays it and acks. */
  type Untagged<T> = T extends unknown ? Omit<T, 'tag'> : never;
  const send = (req: Untagged<KvRequest>): { status: string; value: string | null } => {
    const t = ++tag;
    p.step({ type: 'packet', packet: encodeKvRequest({ ...req, tag: t } as KvRequest) });
    for (let i = 0; i < 20 && !answers.has(t); i++) {
      p.step({ type: 'run', nowMs: now, budget: 1_000_000 });
      const fx = p.ready();
      wire.push(...fx.entries);
      for (const o of fx.outputs) {
        const res = decodeKvResponse(o.packet);
        answers.set(res.tag, res);
      }
      p.advance();
      b.step({ type: 'entries', entries: wire.splice(0) });
      b.step({ type: 'run', nowMs: now, budget: 10_000_000 });
      const ack = b.ready().ack;
      b.advance();
      if (ack) p.step({ type: 'ack', epoch: 1, seq: ack.seq, icount: ack.icount });
      now += 10;
    }
    const a = answers.get(t);
    assert.ok(a, `request ${t} was answered`);
    return a;
  };
  const open = (): number => Number(send({ op: 'open-session' }).value);

  const first = open();
  assert.equal(send({ op: 'incr', session: first, seq: 1, ackBelow: 1, key: 'n' }).value, '1');
  const sessions = Array.from({ length: KV_LIMITS.maxSessions - 1 }, () => open());
  for (const [i, s] of sessions.entries()) if (i % 16 === 0) send({ op: 'incr', session: s, seq: 1, ackBelow: 1, key: 'n' });
  assert.equal(send({ op: 'incr', session: first, seq: 1, ackBelow: 1, key: 'n' }).value, '1', 'a retry: remembered');
  for (let i = 0; i < 20; i++) open(); // 20 more than the guest keeps: the 20 least recently used expire
  assert.equal(send({ op: 'incr', session: first, seq: 1, ackBelow: 1, key: 'n' }).value, '1', 'first was used recently: still live');
  assert.equal(send({ op: 'incr', session: sessions[1]!, seq: 1, ackBelow: 1, key: 'n' }).status, 'session-expired', 'an unused session expired');
  assert.equal(send({ op: 'incr', session: first, seq: 2, ackBelow: 2, key: 'n' }).value, String(2 + Math.ceil((KV_LIMITS.maxSessions - 1) / 16)));

  p.step({ type: 'run', nowMs: now, budget: 1_000_000 });
  b.step({ type: 'entries', entries: [...wire.splice(0), ...p.ready().entries] });
  p.advance();
  b.step({ type: 'run', nowMs: now, budget: 10_000_000 });
  b.advance();
  assert.equal(b.icount, p.icount);
  assert.equal(b.machine!.stateHash(), p.machine!.stateHash(), 'backup and primary hold the same session table');
});
