/**
 * Transcript harness: named FT replicas over explicit, hand-driven channels,
 * and a storage node model with the per-VM epoch flag (test-and-set) and
 * fenced disk writes. Every command prints the effects it caused.
 */
import type { TranscriptCommand } from '@mr/sim';
import { decideTas, decideWrite, type LogEntry, type SnapshotFrame } from '@mr/vmft-protocol';
import { FtReplica, type FtConfig, type FtReady, type DiskOp } from '../../src/index.ts';
import { ToyMachine } from './toy-machine.ts';

const dec = new TextDecoder();
const enc = new TextEncoder();

type Msg = { kind: 'entry'; entry: LogEntry } | { kind: 'ack'; epoch: number; seq: number; icount: number } | { kind: 'snapshot'; frame: SnapshotFrame };

export interface StorageModel {
  epoch: number;
  owner: string;
  blocks: Map<number, string>;
}

export class Harness {
  nodes = new Map<string, FtReplica>();
  peerOf = new Map<string, string>();
  queues = new Map<string, Msg[]>();
  storage: StorageModel = { epoch: 0, owner: '', blocks: new Map() };
  pendingTas: { node: string; epoch: number }[] = [];
  pendingDisk: { node: string; op: DiskOp }[] = [];
  nowMs = 1_000_000;
  #random = 1000;
  #opts: Partial<FtConfig> = {};
  #machineOpts: { busy?: boolean; timerPeriodMs?: number } = {};
  /** Every output released, per node (for checks). */
  released: { node: string; text: string }[] = [];

  handle(cmd: TranscriptCommand): string[] {
    const out: string[] = [];
    try {
      this.#command(cmd, out);
    } catch (err) {
      out.push(`error: ${(err as { code?: string }).code ?? 'Error'}: ${(err as Error).message}`);
    }
    for (const name of [...this.nodes.keys()].sort()) out.push(...this.collect(name));
    return out;
  }

  #command(cmd: TranscriptCommand, out: string[]): void {
    const node = (name: string | undefined): FtReplica => {
      const n = this.nodes.get(name ?? '');
      if (!n) throw new Error(`no node ${name}`);
      return n;
    };
    const times = Number(cmd.kv['n'] ?? 1);
    switch (cmd.name) {
      case 'cluster': {
        const kv = cmd.kv;
        const num = (k: string): number | undefined => (kv[k] !== undefined ? Number(kv[k]) : undefined);
        this.#opts = {
          suspectTicks: num('suspect'), transferTicks: num('transfer'), heartbeatTicks: num('heartbeat'), resendTicks: num('resend'), sliceInstructions: num('slice'),
          progressInstructions: num('progress'), maxUnackedBytes: num('maxbytes'), maxLagInstructions: num('maxlag'), minLagInstructions: num('minlag'), maxLagMs: num('lagms'),
          maxHeldOutputs: num('maxheld'), checkpointEvery: num('checkpoint') ?? 0,
          // The adaptive detector only where a transcript turns it on (phi=8): elsewhere the ticks decide.
          phiThreshold: num('phi') ?? 0, phiMinSdMs: num('phisd'), suspectMaxMs: num('phimax'), phiWindow: num('phiwindow'),
        };
        this.#machineOpts = { busy: cmd.args.includes('busy'), timerPeriodMs: num('timer') ?? 0 };
        if (!cmd.args.includes('keep-storage')) this.storage = { epoch: 0, owner: '', blocks: new Map() };
        const names = cmd.args.filter((a) => a !== 'busy' && a !== 'keep-storage');
        const [p, b] = names.length ? names : ['p', 'b'];
        this.add(p!, 'primary', { withBackup: b !== '-' });
        if (b !== '-') {
          this.add(b!, 'backup', {});
          this.peerOf.set(p!, b!);
          this.peerOf.set(b!, p!);
        }
        break;
      }
      case 'link': {
        const [a, b] = cmd.args as [string, string];
        const pa = node(a), pb = node(b);
        const [prim, back, pn, bn] = pa.role === 'primary' ? [pa, pb, a, b] : [pb, pa, b, a];
        this.peerOf.set(pn, bn);
        this.peerOf.set(bn, pn);
        const h = prim.hello();
        back.step({ type: 'link-up', epoch: h.epoch, seq: h.seq });
        const bh = back.hello();
        prim.step({ type: 'link-up', epoch: bh.epoch, seq: bh.seq });
        break;
      }
      case 'cut': {
        const [a, b] = cmd.args as [string, string];
        this.queues.delete(`${a}->${b}`);
        this.queues.delete(`${b}->${a}`);
        this.nodes.get(a)?.step({ type: 'link-down' });
        this.nodes.get(b)?.step({ type: 'link-down' });
        break;
      }
      case 'lost':
        // The shell found the peer's process gone (its stream broke and its address refuses).
        node(cmd.args[0]).step({ type: 'peer-lost' });
        break;
      case 'tick':
        for (let i = 0; i < times; i++) {
          // periods=K: one tick after K tick periods passed (the process was stalled meanwhile).
          const periods = cmd.kv['periods'] !== undefined ? Number(cmd.kv['periods']) : undefined;
          this.nowMs += Number(cmd.kv['ms'] ?? 10) * (periods ?? 1);
          for (const name of cmd.args) node(name).step({ type: 'tick', nowMs: this.nowMs, ...(periods !== undefined ? { ticks: periods } : {}) });
        }
        break;
      case 'rounds': {
        // rounds A B n=N ms=M [late=K]: N rounds of steady traffic: time moves M ms, both nodes
        // tick, and every message between them is delivered (each way). late=K: in every K-th
        // round A's messages wait one round more (a loaded machine). Prints events only.
        const [a, b] = cmd.args as [string, string];
        const late = Number(cmd.kv['late'] ?? 0);
        for (let i = 1; i <= times; i++) {
          this.nowMs += Number(cmd.kv['ms'] ?? 10);
          for (const name of [a, b]) node(name).step({ type: 'tick', nowMs: this.nowMs });
          for (const name of [...this.nodes.keys()].sort()) out.push(...this.collect(name).filter((l) => l.includes(': event ')));
          const hold = late > 0 && i % late === 0;
          for (const [from, to] of hold ? [[b, a]] : [[a, b], [b, a]]) {
            this.#command({ ...cmd, name: 'deliver', args: [from!, to!], kv: {} }, out);
            for (const name of [...this.nodes.keys()].sort()) out.push(...this.collect(name).filter((l) => l.includes(': event ')));
          }
        }
        break;
      }
      case 'run':
        for (let i = 0; i < times; i++) {
          const budget = cmd.kv['budget'] !== undefined ? Number(cmd.kv['budget']) : undefined;
          node(cmd.args[0]).step({ type: 'run', nowMs: this.nowMs, ...(budget !== undefined ? { budget } : {}) });
        }
        break;
      case 'packet': {
        const n = node(cmd.args[0]);
        const text = cmd.args.slice(1).join(' ');
        const ok = n.accepting();
        if (!ok.ok) out.push(`refused: ${ok.reason}`);
        else n.step({ type: 'packet', packet: enc.encode(text), tag: text });
        break;
      }
      case 'deliver':
      case 'drop': {
        const [from, to] = cmd.args as [string, string];
        const q = this.queues.get(`${from}->${to}`) ?? [];
        const k = cmd.kv['n'] !== undefined ? Number(cmd.kv['n']) : q.length;
        const msgs = q.splice(0, k);
        if (cmd.name === 'drop') {
          out.push(`dropped ${msgs.length}`);
          break;
        }
        const target = node(to);
        let batch: LogEntry[] = [];
        const flush = (): void => {
          if (batch.length) target.step({ type: 'entries', entries: batch });
          batch = [];
        };
        for (const m of msgs) {
          if (m.kind === 'entry') batch.push(m.entry);
          else {
            flush();
            if (m.kind === 'ack') target.step({ type: 'ack', epoch: m.epoch, seq: m.seq, icount: m.icount });
            else target.step({ type: 'snapshot', frame: m.frame });
          }
        }
        flush();
        break;
      }
      case 'tas': {
        const reqs = this.pendingTas.splice(0);
        for (const r of reqs) {
          const n = this.nodes.get(r.node);
          // The rule the real storage node runs (@mr/vmft-protocol decideTas).
          const d = decideTas(this.storage, r.node, r.epoch);
          if (d.outcome === 'refused') {
            out.push(`storage: tas ${r.node} epoch=${r.epoch} REFUSED (${d.why}; storage epoch ${this.storage.epoch})`);
            continue;
          }
          const won = d.outcome === 'won';
          this.storage.epoch = d.flag.epoch;
          this.storage.owner = d.flag.owner;
          out.push(`storage: tas ${r.node} epoch=${r.epoch} ${won ? 'won' : `lost (epoch ${this.storage.epoch} held by ${this.storage.owner})`}`);
          n?.step({ type: 'tas-result', epoch: r.epoch, won, owner: this.storage.owner });
        }
        break;
      }
      case 'disk': {
        const ops = this.pendingDisk.splice(0);
        for (const { node: name, op } of ops) {
          const n = this.nodes.get(name);
          if (op.op === 'read') {
            const data = this.storage.blocks.get(op.block) ?? `blk${op.block}`;
            out.push(`storage: read ${name} block=${op.block} -> "${data}"`);
            n?.step({ type: 'disk-read-done', reqId: op.reqId, data: enc.encode(data) });
          } else if (decideWrite(this.storage, name, op.epoch) !== 'ok') {
            out.push(`storage: write ${name} block=${op.block} epoch=${op.epoch} REFUSED (storage epoch ${this.storage.epoch})`);
            n?.step({ type: 'disk-refused', reqId: op.reqId, epoch: this.storage.epoch });
          } else {
            this.storage.blocks.set(op.block, dec.decode(op.data));
            out.push(`storage: write ${name} block=${op.block} epoch=${op.epoch} "${dec.decode(op.data)}"`);
          }
        }
        break;
      }
      case 'forge': {
        // Feeds a made-up entry to a backup, e.g. `forge b seq=1 kind=random icount=2 value=7`.
        const kv = cmd.kv;
        const base = { seq: Number(kv['seq']), icount: Number(kv['icount']) };
        const e: LogEntry =
          kv['kind'] === 'random' || kv['kind'] === 'clock'
            ? { ...base, kind: kv['kind'], value: Number(kv['value'] ?? 0) }
            : kv['kind'] === 'nic'
              ? { ...base, kind: 'nic', packet: enc.encode(kv['text'] ?? '') }
              : kv['kind'] === 'interrupt'
                ? { ...base, kind: 'interrupt', vector: Number(kv['vector'] ?? 0) }
                : { ...base, kind: 'progress' };
        node(cmd.args[0]).step({ type: 'entries', entries: [e] });
        break;
      }
      case 'join': {
        const [name] = cmd.args as [string];
        const from = cmd.kv['from']!;
        this.add(name, 'backup', { join: true });
        this.peerOf.set(from, name);
        this.peerOf.set(name, from);
        this.queues.delete(`${from}->${name}`);
        node(from).step({ type: 'join' });
        break;
      }
      case 'crash': {
        const [name] = cmd.args as [string];
        this.nodes.delete(name);
        for (const k of [...this.queues.keys()]) if (k.startsWith(`${name}->`) || k.endsWith(`->${name}`)) this.queues.delete(k);
        this.pendingTas = this.pendingTas.filter((t) => t.node !== name);
        this.pendingDisk = this.pendingDisk.filter((t) => t.node !== name);
        out.push(`crashed ${name}`);
        break;
      }
      case 'status': {
        const s = node(cmd.args[0]).status();
        out.push(
          `role=${s.role} live=${s.live} epoch=${s.epoch} icount=${s.icount} sent=${s.log.sent} acked=${s.log.acked} unacked=${s.log.unackedBytes}B ` +
            `held=${s.outputs.held} released=${s.outputs.released} suppressed=${s.outputs.suppressed} peer=${s.peer.state} silent=${s.peer.silentTicks} lag=${s.peer.lagInstructions}` +
            (s.reason ? ` reason="${s.reason}"` : ''),
        );
        break;
      }
      case 'suspicion': {
        const d = node(cmd.args[0]).suspicion();
        out.push(d ? `suspicion window=${d.windowMs}ms gaps=${d.gaps} mean=${d.meanGapMs}ms longest=${d.longestGapMs}ms` : 'no detector');
        break;
      }
      case 'lag': {
        const l = node(cmd.args[0]).lagLimit();
        out.push(`lag limit=${l.instructions} replay=${l.replayPerMs.toFixed(1)}/ms`);
        break;
      }
      case 'hash': {
        const a = node(cmd.args[0]).machine!, b = node(cmd.args[1]).machine!;
        out.push(`${cmd.args[0]}@${a.icount}=${a.stateHash()} ${cmd.args[1]}@${b.icount}=${b.stateHash()} ${a.icount === b.icount && a.stateHash() === b.stateHash() ? 'EQUAL' : 'DIFFERENT'}`);
        break;
      }
      case 'queue': {
        for (const [k, q] of [...this.queues].sort()) if (q.length) out.push(`${k}: ${q.map(describeMsg).join(', ')}`);
        break;
      }
      default:
        throw new Error(`unknown command ${cmd.name}`);
    }
  }

  add(name: string, role: 'primary' | 'backup', extra: Partial<FtConfig>): FtReplica {
    const cfg: FtConfig = {
      ...this.#opts,
      ...extra,
      vmId: 'vm1',
      nodeId: name,
      role,
      ...(extra.join ? {} : { machine: new ToyMachine(this.#machineOpts) }),
      restore: (bytes) => ToyMachine.restore(bytes),
      random: () => this.#random++,
    };
    const r = new FtReplica(cfg);
    this.nodes.set(name, r);
    return r;
  }

  /** Routes and prints one node's effects, then advances it. */
  collect(name: string): string[] {
    const n = this.nodes.get(name)!;
    const fx: FtReady = n.ready();
    const out: string[] = [];
    const peer = this.peerOf.get(name);
    const q = (to: string | undefined): Msg[] => {
      const k = `${name}->${to ?? '?'}`;
      let v = this.queues.get(k);
      if (!v) this.queues.set(k, (v = []));
      return v;
    };
    if (fx.snapshot) {
      q(peer).push({ kind: 'snapshot', frame: fx.snapshot });
      out.push(`${name}: snapshot seq=${fx.snapshot.seq} icount=${fx.snapshot.icount} epoch=${fx.snapshot.epoch}`);
    }
    if (fx.entries.length) {
      for (const e of fx.entries) q(peer).push({ kind: 'entry', entry: e });
      out.push(`${name}: send ${fx.entries.map(describeEntry).join(', ')}`);
    }
    if (fx.ack) {
      q(peer).push({ kind: 'ack', epoch: fx.ack.epoch, seq: fx.ack.seq, icount: fx.ack.icount });
      out.push(`${name}: ack seq=${fx.ack.seq} icount=${fx.ack.icount} epoch=${fx.ack.epoch}`);
    }
    if (fx.tas) {
      this.pendingTas.push({ node: name, epoch: fx.tas.epoch });
      out.push(`${name}: test-and-set epoch=${fx.tas.epoch}`);
    }
    for (const d of fx.disk) {
      this.pendingDisk.push({ node: name, op: d });
      out.push(d.op === 'read' ? `${name}: disk read req=${d.reqId} block=${d.block}` : `${name}: disk write req=${d.reqId} block=${d.block} epoch=${d.epoch} "${dec.decode(d.data)}"`);
    }
    for (const o of fx.outputs) {
      const text = dec.decode(o.packet);
      this.released.push({ node: name, text });
      out.push(`${name}: OUTPUT seq=${o.seq} icount=${o.icount} "${text}"`);
    }
    for (const e of fx.events) {
      if (e.type === 'packet-delivered' || e.type === 'checkpoint') continue;
      const { type, ...rest } = e;
      const kv = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' && v.includes(' ') ? JSON.stringify(v) : String(v)}`);
      out.push(`${name}: event ${type}${kv.length ? ' ' + kv.join(' ') : ''}`);
    }
    n.advance();
    return out;
  }
}

export function describeEntry(e: LogEntry): string {
  switch (e.kind) {
    case 'nic':
      return `${e.seq}:nic@${e.icount}"${dec.decode(e.packet)}"`;
    case 'disk':
      return `${e.seq}:disk@${e.icount}#${e.reqId}"${dec.decode(e.data)}"`;
    case 'interrupt':
      return `${e.seq}:irq${e.vector}@${e.icount}`;
    case 'clock':
    case 'random':
      return `${e.seq}:${e.kind}@${e.icount}=${e.value}`;
    case 'port':
      return `${e.seq}:port${e.port}@${e.icount}=${e.value}`;
    case 'progress':
      return `${e.seq}:progress@${e.icount}`;
  }
}

function describeMsg(m: Msg): string {
  if (m.kind === 'entry') return describeEntry(m.entry);
  if (m.kind === 'ack') return `ack(${m.seq},${m.icount})`;
  return `snapshot(${m.frame.seq}@${m.frame.icount})`;
}
