/**
 * Properties of replication over the real CPU and the kv guest: however the
 * log is chunked on the way, however the backup's run budgets are split and
 * whenever acks arrive, the backup reaches the primary's state at the same
 * instruction count, never runs past the newest entry it holds, and no output
 * leaves before the backup holds the entries it depends on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Value } from 'typebox/value';
import { Cpu } from '@mr/vmft-cpu';
import { getGuest, encodeKvRequest, decodeKvResponse } from '@mr/vmft-guests';
import { VmStatus, type LogEntry } from '@mr/vmft-protocol';
import { FtReplica } from '../src/index.ts';

type Action =
  | { a: 'request'; key: number; op: 'incr' | 'get' | 'append' }
  | { a: 'run-primary'; budget: number }
  | { a: 'tick-primary' }
  | { a: 'deliver'; n: number }
  | { a: 'run-backup'; budget: number }
  | { a: 'ack' };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ a: fc.constant('request' as const), key: fc.nat(3), op: fc.constantFrom('incr' as const, 'get' as const, 'append' as const) }),
  fc.record({ a: fc.constant('run-primary' as const), budget: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({ a: fc.constant('tick-primary' as const) }),
  fc.record({ a: fc.constant('deliver' as const), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ a: fc.constant('run-backup' as const), budget: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({ a: fc.constant('ack' as const) }),
);

function pair(seed: number) {
  const program = getGuest('kv');
  let r = seed >>> 0;
  const random = (): number => (r = (Math.imul(r, 1664525) + 1013904223) >>> 0);
  const common = { vmId: 'vm1', random, checkpointEvery: 1, heartbeatTicks: 1, suspectTicks: 1000 };
  const p = new FtReplica({ ...common, nodeId: 'p', role: 'primary', machine: new Cpu(program) });
  const b = new FtReplica({ ...common, nodeId: 'b', role: 'backup', machine: new Cpu(program) });
  return { p, b };
}

test('replay is independent of chunking, budgets and ack timing; output rule and backup bound hold', () => {
  fc.assert(
    fc.property(fc.array(action, { maxLength: 60 }), fc.nat(), (actions, seed) => {
      const { p, b } = pair(seed);
      let now = 1_000_000;
      p.step({ type: 'tas-result', epoch: 1, won: true });
      p.advance();
      b.step({ type: 'link-up', epoch: 1, seq: 0 });
      p.step({ type: 'link-up', epoch: 1, seq: b.hello().seq });
      const wire: LogEntry[] = [];
      const acks: { seq: number; icount: number }[] = [];
      let tag = 1;
      const released: number[] = [];
      // The kv guest's first session gets id 1 << 8 | 0 (generation 1, slot 0).
      p.step({ type: 'packet', packet: encodeKvRequest({ tag: tag++, op: 'open-session' }) });
      const session = 256;
      const pump = (): void => {
        const fx = p.ready();
        wire.push(...fx.entries);
        for (const o of fx.outputs) {
          // Output rule: the backup holds every entry up to the output's seq.
          assert.ok(o.seq <= b.status().log.sent, `output needing seq ${o.seq} released, backup holds ${b.status().log.sent}`);
          released.push(decodeKvResponse(o.packet).tag);
        }
        p.advance();
        const bx = b.ready();
        if (bx.ack) acks.push({ seq: bx.ack.seq, icount: bx.ack.icount });
        assert.equal(bx.outputs.length, 0, 'a backup never releases outputs');
        b.advance();
        const st = b.status();
        assert.ok(st.icount <= st.peer.icount, `backup at ${st.icount} past its newest entry ${st.peer.icount}`);
      };
      for (const act of actions) {
        switch (act.a) {
          case 'request':
            if (p.accepting().ok) {
              const packet = encodeKvRequest({ tag: tag++, op: act.op, session, seq: tag, ackBelow: tag, key: `k${act.key}`, ...(act.op === 'append' ? { value: 'z' } : {}) });
              p.step({ type: 'packet', packet });
            }
            break;
          case 'run-primary':
            p.step({ type: 'run', nowMs: now, budget: act.budget });
            break;
          case 'tick-primary':
            now += 10;
            p.step({ type: 'tick', nowMs: now });
            break;
          case 'deliver':
            if (wire.length) b.step({ type: 'entries', entries: wire.splice(0, act.n) });
            break;
          case 'run-backup':
            b.step({ type: 'run', nowMs: now, budget: act.budget });
            break;
          case 'ack': {
            const a = acks.splice(0);
            for (const x of a) p.step({ type: 'ack', epoch: 1, seq: x.seq, icount: x.icount });
            break;
          }
        }
        pump();
      }
      // Drain: the primary idles (heartbeat at its final icount), everything is delivered and replayed.
      for (let i = 0; i < 3; i++) {
        p.step({ type: 'run', nowMs: now, budget: 1_000_000 });
        now += 10;
        p.step({ type: 'tick', nowMs: now });
        pump();
      }
      b.step({ type: 'entries', entries: wire.splice(0) });
      pump();
      b.step({ type: 'run', nowMs: now, budget: 10_000_000 });
      pump();
      for (const x of acks.splice(0)) p.step({ type: 'ack', epoch: 1, seq: x.seq, icount: x.icount });
      pump();
      assert.equal(b.icount, p.icount);
      assert.equal(b.machine!.stateHash(), p.machine!.stateHash());
      assert.equal(p.status().outputs.held, 0, 'all outputs released once everything is acked');
      assert.equal(b.status().outputs.suppressed, released.length, 'the backup produced (and suppressed) the same outputs');
      // Checkpoints taken on both sides at the same seqs agree.
      const pc = new Map(p.checkpoints().map((c) => [c.seq, c]));
      for (const c of b.checkpoints()) {
        const q = pc.get(c.seq);
        if (q) assert.deepEqual(c, q);
      }
      assert.ok(Value.Check(VmStatus, p.status()) && Value.Check(VmStatus, b.status()), 'status matches the VmStatus schema');
    }),
    { numRuns: 150 },
  );
});
