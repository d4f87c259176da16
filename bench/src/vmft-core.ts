/**
 * Cost of replication in the FT core, measured side by side in one process
 * (CPU time of this process, as in vm-cpu.ts, because the machine is shared):
 *
 * - `alone`: a primary with no backup running the compute-bound `cpu` guest in
 *   100k-instruction slices (no log, outputs released at once);
 * - `replicated`: the same primary with a backup: every slice ends with a
 *   progress entry, encoded to wire frames as a shell would, acks fed back;
 *   the ratio replicated/alone is the primary's overhead (goal ≥ 0.9);
 * - `backup replay`: the backup replaying that log (decode + run to each
 *   entry's icount);
 * - `kv`: log bytes per client request for the kv guest (request packet,
 *   random reads, progress entries), with the backup in lockstep.
 */
import { Cpu } from '@mr/vmft-cpu';
import { getGuest, encodeKvRequest } from '@mr/vmft-guests';
import { FtReplica } from '@mr/vmft-core';
import { encodeFrame, FrameDecoder, type LogEntry } from '@mr/vmft-protocol';
import { median, type Benchmark } from './benchmark.ts';

function cpuSeconds(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

let r = 12345;
const random = (): number => (r = (Math.imul(r, 1664525) + 1013904223) >>> 0);

function primary(withBackup: boolean, guest: string): FtReplica {
  const p = new FtReplica({ vmId: 'vm', nodeId: 'p', role: 'primary', machine: new Cpu(getGuest(guest)), random, withBackup, maxLagInstructions: 1e12 });
  p.step({ type: 'tas-result', epoch: 1, won: true });
  p.advance();
  if (withBackup) {
    p.step({ type: 'link-up', epoch: 1, seq: 0 });
    p.advance();
  }
  return p;
}

export const vmftCore: Benchmark = {
  name: 'vmft-core',
  description: 'FT core: instructions/s alone vs replicated (primary side), backup replay rate, kv log bytes per request',
  async run({ quick, log }) {
    const total = quick ? 20_000_000 : 200_000_000;
    const slice = 100_000;

    const runAlone = (): number => {
      const alone = primary(false, 'cpu');
      return cpuSeconds(() => {
        while (alone.icount < total) {
          alone.step({ type: 'run', nowMs: 0, budget: slice });
          alone.advance();
        }
      });
    };
    let wire: Uint8Array[] = [];
    let bytes = 0;
    let rep = primary(true, 'cpu');
    const runReplicated = (): number => {
      rep = primary(true, 'cpu');
      wire = [];
      bytes = 0;
      return cpuSeconds(() => {
      while (rep.icount < total) {
        rep.step({ type: 'run', nowMs: 0, budget: slice });
        const fx = rep.ready();
        let last = 0;
        for (const e of fx.entries) {
          const f = encodeFrame({ type: 'entry', entry: e });
          wire.push(f);
          bytes += f.byteLength;
          last = e.seq;
        }
        rep.advance();
        if (last) {
          rep.step({ type: 'ack', epoch: 1, seq: last, icount: rep.icount });
          rep.advance();
        }
      }
      });
    };
    // Warm up both paths, then alternate and keep the median of three each.
    runAlone();
    runReplicated();
    const aloneRuns: number[] = [], repRuns: number[] = [];
    for (let i = 0; i < 3; i++) {
      aloneRuns.push(runAlone());
      repRuns.push(runReplicated());
    }
    const aloneS = median(aloneRuns), repS = median(repRuns);

    const backup = new FtReplica({ vmId: 'vm', nodeId: 'b', role: 'backup', machine: new Cpu(getGuest('cpu')), random });
    backup.step({ type: 'link-up', epoch: 1, seq: 0 });
    backup.advance();
    const dec = new FrameDecoder();
    const backS = cpuSeconds(() => {
      for (const f of wire) {
        const entries: LogEntry[] = [];
        for (const fr of dec.push(f)) if (fr.type === 'entry') entries.push(fr.entry);
        backup.step({ type: 'entries', entries });
        backup.step({ type: 'run', nowMs: 0, budget: 10 * slice });
        backup.advance();
      }
    });
    if (backup.machine!.stateHash() !== rep.machine!.stateHash()) throw new Error('backup diverged in the benchmark');

    const aloneIps = total / aloneS, repIps = total / repS, backIps = total / backS;
    log(`alone       ${(aloneIps / 1e6).toFixed(1)} M instr/s`);
    log(`replicated  ${(repIps / 1e6).toFixed(1)} M instr/s  (${(repIps / aloneIps).toFixed(3)}× alone; ${wire.length} entries, ${bytes} log bytes)`);
    log(`backup      ${(backIps / 1e6).toFixed(1)} M instr/s replaying`);

    // kv: log bytes per request, primary and backup in lockstep.
    const n = quick ? 500 : 5000;
    const kv = primary(true, 'kv');
    const kb = new FtReplica({ vmId: 'vm', nodeId: 'b', role: 'backup', machine: new Cpu(getGuest('kv')), random });
    kb.step({ type: 'link-up', epoch: 1, seq: 0 });
    kb.advance();
    let kvBytes = 0, answered = 0;
    for (let i = 0; i < n; i++) {
      // Request 0 opens the session (id 1 << 8: generation 1, slot 0); the rest are incr requests in it.
      const packet = i === 0 ? encodeKvRequest({ tag: 1, op: 'open-session' }) : encodeKvRequest({ tag: i + 1, op: 'incr', session: 256, seq: i, ackBelow: i, key: 'x' });
      kv.step({ type: 'packet', packet });
      kv.step({ type: 'run', nowMs: 0, budget: slice });
      const fx = kv.ready();
      answered += fx.outputs.length;
      for (const e of fx.entries) kvBytes += encodeFrame({ type: 'entry', entry: e }).byteLength;
      const entries = fx.entries;
      kv.advance();
      kb.step({ type: 'entries', entries });
      const ack = kb.ready().ack!;
      kb.advance();
      kv.step({ type: 'ack', epoch: 1, seq: ack.seq, icount: ack.icount });
      answered += kv.ready().outputs.length;
      kv.advance();
      kb.step({ type: 'run', nowMs: 0, budget: slice });
      kb.advance();
    }
    kv.step({ type: 'run', nowMs: 0, budget: slice });
    const tail = kv.ready();
    kv.advance();
    kb.step({ type: 'entries', entries: tail.entries });
    const last = kb.ready().ack!;
    kb.advance();
    kv.step({ type: 'ack', epoch: 1, seq: last.seq, icount: last.icount });
    answered += tail.outputs.length + kv.ready().outputs.length;
    kv.advance();
    if (answered !== n) throw new Error(`kv: ${answered} of ${n} answered`);
    log(`kv          ${(kvBytes / n).toFixed(1)} log bytes per incr request (${n} requests, ${(kv.icount / n).toFixed(0)} instructions each)`);
    return {
      aloneMips: +(aloneIps / 1e6).toFixed(1),
      replicatedMips: +(repIps / 1e6).toFixed(1),
      replicatedRatio: +(repIps / aloneIps).toFixed(3),
      backupReplayMips: +(backIps / 1e6).toFixed(1),
      kvLogBytesPerRequest: +(kvBytes / n).toFixed(1),
    };
  },
};
