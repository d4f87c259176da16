/**
 * Seeded simulation of the FT VM: FtReplica cores over the real CPU and
 * guests, a simulated log channel (ordered stream that breaks, with delays,
 * partitions and reconnect + resend), a storage node model (test-and-set
 * with epochs, fenced disk writes), clients that retry with the same request
 * id, primary crashes at random instants and joins by state transfer.
 * Everything runs on one SimClock and one seeded Rng: a seed replays exactly.
 *
 * Checkers (violations are collected, the test asserts there are none):
 * - equal state hashes at every checkpoint (epoch, seq) two nodes reached;
 * - a backup never executes past the newest entry it holds;
 * - never two live primaries in one epoch, never outputs from two nodes in one epoch, and
 *   never an output from an older epoch after a newer epoch released one (split brain);
 * - no output released before the backup acknowledged (received) its seq;
 * - the client-level checks are in sim.test.ts (exactly-once incr, conservation).
 */
import { Cpu, type Program } from '@mr/vmft-cpu';
import { packetTag } from '@mr/vmft-guests';
import { SimClock, type Rng } from '@mr/sim';
import { decideTas, decideWrite, type LogEntry, type SnapshotFrame } from '@mr/vmft-protocol';
import { FtReplica, type FtInput, type FtConfig } from '../../src/index.ts';

export interface SimOptions {
  program: Program;
  rng: Rng;
  /** Probability per fault round (every faultEveryMs) of each fault. */
  pBreak?: number;
  pPartition?: number;
  pCrash?: number;
  maxCrashes?: number;
  faultEveryMs?: number;
  tickMs?: number;
  core?: Partial<FtConfig>;
  /** Initial disk contents (block → bytes). */
  disk?: Map<number, Uint8Array>;
}

type Msg =
  | { kind: 'entries'; entries: LogEntry[] }
  | { kind: 'ack'; epoch: number; seq: number; icount: number }
  | { kind: 'snapshot'; frame: SnapshotFrame };

interface Link {
  a: string; // primary side
  b: string; // backup side
  gen: number;
  up: boolean;
  lastAt: Record<string, number>; // FIFO: last scheduled delivery time per direction
}

export interface ClientReply {
  node: string;
  packet: Uint8Array;
}

export class SimNode {
  alive = true;
  readonly core: FtReplica;
  readonly tags = new Map<number, (r: ClientReply) => void>();
  constructor(readonly name: string, core: FtReplica) {
    this.core = core;
  }
}

export class SimCluster {
  readonly clock = new SimClock(1_700_000_000_000);
  readonly rng: Rng;
  readonly nodes = new Map<string, SimNode>();
  readonly violations: string[] = [];
  readonly log: string[] = [];
  storage = { epoch: 0, owner: '', blocks: new Map<number, Uint8Array>() };
  link: Link | undefined;
  partitioned = false;
  crashes = 0;
  joins = 0;
  faultsOn = true;
  #nextName = 0;
  #nextTag = 1;
  #checkpoints = new Map<string, { node: string; icount: number; hash: string }>();
  #liveByEpoch = new Map<number, string>();
  #outputsByEpoch = new Map<number, string>();
  #maxReleasedEpoch = 0;
  readonly opts: Required<Omit<SimOptions, 'core' | 'disk'>> & Pick<SimOptions, 'core' | 'disk'>;
  stats = { snapshots: 0, released: 0, entries: 0, bytes: 0, failovers: 0, breaks: 0, partitions: 0, checkpointsCompared: 0 };

  constructor(opts: SimOptions) {
    this.opts = {
      pBreak: 0.05, pPartition: 0.02, pCrash: 0.02, maxCrashes: 2, faultEveryMs: 50, tickMs: 10, ...opts,
    };
    this.rng = opts.rng;
    if (opts.disk) for (const [b, d] of opts.disk) this.storage.blocks.set(b, d);
  }

  now(): number {
    return this.clock.now();
  }

  note(s: string): void {
    this.log.push(`${this.now() - 1_700_000_000_000}ms ${s}`);
    if (this.log.length > 400) this.log.shift();
  }

  violation(s: string): void {
    this.violations.push(`${this.now() - 1_700_000_000_000}ms ${s}`);
    this.note(`VIOLATION ${s}`);
  }

  // ------------------------------------------------------------------ nodes

  #newCore(name: string, role: 'primary' | 'backup', join: boolean): FtReplica {
    const program = this.opts.program;
    const random = this.rng.fork();
    return new FtReplica({
      suspectTicks: 8,
      heartbeatTicks: 2,
      resendTicks: 4,
      sliceInstructions: 20_000,
      checkpointEvery: 2,
      maxUnackedBytes: 256 * 1024,
      maxLagInstructions: 2_000_000,
      ...this.opts.core,
      vmId: 'vm1',
      nodeId: name,
      role,
      join,
      ...(join ? {} : { machine: new Cpu(program) }),
      restore: (bytes) => {
        const c = new Cpu(program);
        c.restore(bytes);
        return c;
      },
      random: () => random.int(0x100000000),
    });
  }

  startPair(): { primary: string; backup: string } {
    const p = this.#spawn('primary', false);
    const b = this.#spawn('backup', false);
    this.link = { a: p.name, b: b.name, gen: 0, up: false, lastAt: {} };
    this.clock.schedule(1, () => this.#connect());
    this.clock.schedule(this.opts.faultEveryMs, () => this.#faultLoop());
    return { primary: p.name, backup: b.name };
  }

  #spawn(role: 'primary' | 'backup', join: boolean): SimNode {
    const name = `n${++this.#nextName}`;
    const node = new SimNode(name, this.#newCore(name, role, join));
    this.nodes.set(name, node);
    this.note(`spawn ${name} ${role}${join ? ' (join)' : ''}`);
    const tick = (): void => {
      if (!node.alive) return;
      this.drive(node, { type: 'tick', nowMs: this.now() });
      this.clock.schedule(this.opts.tickMs + this.rng.range(-3, 3), tick);
    };
    const run = (): void => {
      if (!node.alive) return;
      this.drive(node, { type: 'run', nowMs: this.now(), budget: this.rng.range(200, 20_000) });
      this.clock.schedule(this.rng.range(1, 3), run);
    };
    this.clock.schedule(this.rng.range(1, this.opts.tickMs), tick);
    this.clock.schedule(1, run);
    this.drive(node, undefined);
    return node;
  }

  /** Steps a node and carries out its effects. */
  drive(node: SimNode, input: FtInput | undefined): void {
    if (!node.alive) return;
    const core = node.core;
    try {
      if (input) core.step(input);
    } catch (err) {
      this.violation(`${node.name}: ${(err as Error).message}`);
    }
    const fx = core.ready();
    const peer = this.#peerOf(node.name);
    if (fx.snapshot && peer) this.#send(node.name, peer, { kind: 'snapshot', frame: fx.snapshot });
    if (fx.entries.length && peer) {
      this.stats.entries += fx.entries.length;
      this.#send(node.name, peer, { kind: 'entries', entries: fx.entries });
    }
    if (fx.ack && peer) this.#send(node.name, peer, { kind: 'ack', epoch: fx.ack.epoch, seq: fx.ack.seq, icount: fx.ack.icount });
    if (fx.tas) {
      const epoch = fx.tas.epoch;
      this.clock.schedule(this.rng.range(1, 8), () => {
        const s = this.storage;
        // The rule the real storage node runs (@mr/vmft-protocol decideTas).
        const d = decideTas(s, node.name, epoch);
        if (d.outcome === 'refused') {
          // No correct node skips an epoch or leaves 1..MAX_EPOCH: the real store refuses it (the node keeps retrying).
          this.violation(`${node.name} claimed epoch ${epoch} at storage epoch ${s.epoch}: refused (${d.why})`);
          return;
        }
        const won = d.outcome === 'won';
        s.epoch = d.flag.epoch;
        s.owner = d.flag.owner;
        this.note(`storage: tas ${node.name} epoch=${epoch} ${won ? 'won' : 'lost'}`);
        this.clock.schedule(this.rng.range(1, 8), () => this.drive(node, { type: 'tas-result', epoch, won, owner: s.owner }));
      });
    }
    for (const d of fx.disk) {
      this.clock.schedule(this.rng.range(1, 6), () => {
        if (d.op === 'read') {
          const data = new Uint8Array(d.count * 512);
          for (let i = 0; i < d.count; i++) {
            const b = this.storage.blocks.get(d.block + i);
            if (b) data.set(b.subarray(0, 512), i * 512);
          }
          this.clock.schedule(this.rng.range(1, 6), () => this.drive(node, { type: 'disk-read-done', reqId: d.reqId, data }));
        } else if (decideWrite(this.storage, node.name, d.epoch) !== 'ok') {
          const s = this.storage;
          this.note(`storage: refused write of ${node.name} epoch ${d.epoch}: ${d.epoch < s.epoch ? `< ${s.epoch}` : `not the owner (${s.owner} in epoch ${s.epoch})`}`);
          this.clock.schedule(this.rng.range(1, 6), () => this.drive(node, { type: 'disk-refused', reqId: d.reqId, epoch: this.storage.epoch }));
        } else {
          for (let i = 0; i < d.count; i++) this.storage.blocks.set(d.block + i, d.data.slice(i * 512, (i + 1) * 512));
        }
      });
    }
    if (fx.outputs.length) this.#checkOutputs(node, fx.outputs.map((o) => o.seq));
    for (const o of fx.outputs) {
      this.stats.released++;
      const tag = packetTag(o.packet);
      const reply = tag !== undefined ? node.tags.get(tag) : undefined;
      if (reply) {
        node.tags.delete(tag!);
        this.clock.schedule(this.rng.range(1, 5), () => reply({ node: node.name, packet: o.packet }));
      }
    }
    for (const e of fx.events) {
      switch (e.type) {
        case 'checkpoint':
          this.#checkpoint(node, e.seq, e.icount, e.hash);
          break;
        case 'live':
          this.note(`${node.name} LIVE epoch ${e.epoch} at ${e.icount}`);
          if (this.link && this.link.b === node.name) {
            this.stats.failovers++;
            this.#breakLink(`${node.name} went live`);
          }
          break;
        case 'alone':
        case 'stopped':
          this.note(`${node.name} ${e.type} ${'reason' in e ? e.reason : `epoch ${e.epoch}`}`);
          this.#breakLink(`${node.name} ${e.type}`);
          break;
        case 'joining':
          this.stats.snapshots++;
          this.note(`${node.name} ${e.type} ${JSON.stringify(e)}`);
          break;
        case 'suspected':
        case 'installed':
        case 'drained':
          this.note(`${node.name} ${e.type} ${JSON.stringify(e)}`);
          break;
        default:
      }
    }
    core.advance();
    this.#checkInvariants(node);
  }

  // ------------------------------------------------------------------ network

  #peerOf(name: string): string | undefined {
    const l = this.link;
    if (!l) return undefined;
    return l.a === name ? l.b : l.b === name ? l.a : undefined;
  }

  #send(from: string, to: string, msg: Msg): void {
    const l = this.link;
    if (!l || !l.up) return;
    const gen = l.gen;
    const dir = `${from}->${to}`;
    if (msg.kind === 'entries') for (const e of msg.entries) this.stats.bytes += e.kind === 'nic' ? 22 + e.packet.length : 26;
    const at = Math.max(this.now() + this.rng.range(0, 4), l.lastAt[dir] ?? 0);
    l.lastAt[dir] = at;
    this.clock.schedule(at - this.now(), () => {
      if (this.link !== l || l.gen !== gen || !l.up) return; // the stream broke: lost
      const node = this.nodes.get(to);
      if (!node?.alive) return;
      if (msg.kind === 'entries') this.drive(node, { type: 'entries', entries: msg.entries });
      else if (msg.kind === 'ack') this.drive(node, { type: 'ack', epoch: msg.epoch, seq: msg.seq, icount: msg.icount });
      else this.drive(node, { type: 'snapshot', frame: msg.frame });
    });
  }

  #breakLink(why: string): void {
    const l = this.link;
    if (!l || !l.up) return;
    l.up = false;
    l.gen++;
    this.note(`link ${l.a}-${l.b} down: ${why}`);
    for (const n of [l.a, l.b]) {
      const node = this.nodes.get(n);
      if (node?.alive) this.clock.schedule(0, () => this.drive(node, { type: 'link-down' }));
    }
    this.clock.schedule(this.rng.range(5, 30), () => this.#connect());
  }

  /** Opens the log stream when both ends can talk: hello each way. */
  #connect(): void {
    const l = this.link;
    if (!l || l.up) return;
    const p = this.nodes.get(l.a), b = this.nodes.get(l.b);
    if (!p?.alive || !b?.alive || p.core.role !== 'primary' || (b.core.role !== 'backup' && b.core.role !== 'joining')) return;
    if (this.partitioned || !p.core.live) {
      this.clock.schedule(this.rng.range(5, 30), () => this.#connect());
      return;
    }
    l.up = true;
    l.gen++;
    l.lastAt = {};
    const gen = l.gen;
    const h = p.core.hello();
    this.clock.schedule(this.rng.range(1, 3), () => {
      if (l.gen !== gen || !l.up || !b.alive) return;
      this.drive(b, { type: 'link-up', epoch: h.epoch, seq: h.seq });
      const bh = b.core.hello();
      this.clock.schedule(this.rng.range(1, 3), () => {
        if (l.gen !== gen || !l.up || !p.alive) return;
        this.drive(p, { type: 'link-up', epoch: bh.epoch, seq: bh.seq });
      });
    });
  }

  // ------------------------------------------------------------------ faults

  #faultLoop(): void {
    if (this.faultsOn) {
      const r = this.rng;
      if (this.link?.up && r.chance(this.opts.pBreak)) {
        this.stats.breaks++;
        this.#breakLink('injected stream break');
      }
      if (!this.partitioned && r.chance(this.opts.pPartition)) {
        this.stats.partitions++;
        this.partitioned = true;
        this.#breakLink('partition');
        const heal = r.range(20, 400);
        this.note(`partition for ${heal}ms`);
        this.clock.schedule(heal, () => {
          this.partitioned = false;
          this.note('partition healed');
        });
      }
      const live = this.livePrimary();
      const backupName = live && this.#peerOf(live.name);
      const backup = backupName ? this.nodes.get(backupName) : undefined;
      // Crash the primary only while it is protected (a crash of a lone primary loses the VM: nothing to check).
      const protectedPair = live?.core.status().peer.state === 'connected' && backup?.alive && backup.core.role === 'backup';
      if (live && protectedPair && this.crashes < this.opts.maxCrashes && r.chance(this.opts.pCrash)) {
        this.crashes++;
        live.alive = false;
        this.note(`CRASH ${live.name}`);
        this.#breakLink('crash');
      }
    }
    this.#maybeJoin();
    this.clock.schedule(this.opts.faultEveryMs, () => this.#faultLoop());
  }

  /** Brings up a new backup by state transfer when the live primary is alone. */
  #maybeJoin(): void {
    const p = this.livePrimary();
    if (!p || p.core.status().peer.state !== 'none') return;
    if (this.partitioned) return;
    this.joins++;
    const j = this.#spawn('backup', true);
    const link: Link = { a: p.name, b: j.name, gen: 1, up: true, lastAt: {} };
    this.link = link;
    this.drive(p, { type: 'join' });
    // Sometimes the stream breaks while the snapshot is on its way: the joiner reconnects and needs a fresh one.
    if (this.faultsOn && this.rng.chance(0.3)) this.clock.schedule(0, () => this.link === link && this.#breakLink('break during state transfer'));
  }

  livePrimary(): SimNode | undefined {
    for (const n of this.nodes.values()) if (n.alive && n.core.role === 'primary' && n.core.live) return n;
    return undefined;
  }

  // ------------------------------------------------------------------ clients

  /** A client request to a node: false when the node refuses (not live, stopped, busy). */
  request(nodeName: string, packet: Uint8Array, reply: (r: ClientReply) => void): { ok: boolean; reason?: string } {
    const node = this.nodes.get(nodeName);
    if (!node?.alive) return { ok: false, reason: 'unreachable' };
    const acc = node.core.accepting();
    if (!acc.ok) return { ok: false, reason: acc.reason };
    const tag = this.#nextTag++;
    const p = packet.slice();
    new DataView(p.buffer).setUint32(0, tag, true);
    node.tags.set(tag, reply);
    this.drive(node, { type: 'packet', packet: p, tag: String(tag) });
    return { ok: true };
  }

  // ------------------------------------------------------------------ checkers

  #checkpoint(node: SimNode, seq: number, icount: number, hash: string): void {
    const key = `${node.core.epoch}/${seq}`;
    const prev = this.#checkpoints.get(key);
    if (!prev) {
      this.#checkpoints.set(key, { node: node.name, icount, hash });
      return;
    }
    if (prev.node === node.name) return;
    this.stats.checkpointsCompared++;
    if (prev.icount !== icount || prev.hash !== hash) {
      this.violation(`checkpoint ${key}: ${prev.node} has ${prev.hash}@${prev.icount}, ${node.name} has ${hash}@${icount}`);
    }
  }

  #checkOutputs(node: SimNode, seqs: number[]): void {
    const epoch = node.core.epoch;
    const other = this.#outputsByEpoch.get(epoch);
    if (other && other !== node.name) this.violation(`outputs from ${other} and ${node.name} in epoch ${epoch}`);
    this.#outputsByEpoch.set(epoch, node.name);
    // Once a newer epoch has released outputs, an older primary must never release again (split brain).
    if (epoch < this.#maxReleasedEpoch) this.violation(`${node.name} released outputs in epoch ${epoch} after epoch ${this.#maxReleasedEpoch} had`);
    this.#maxReleasedEpoch = Math.max(this.#maxReleasedEpoch, epoch);
    const st = node.core.status();
    if (st.peer.state === 'none') return; // alone: it won test-and-set, no backup can go live in this epoch
    const peer = this.#peerOf(node.name);
    const b = peer ? this.nodes.get(peer) : undefined;
    const held = b && b.core.epoch === epoch ? b.core.status().log.sent : 0;
    for (const s of seqs) if (s > held) this.violation(`${node.name} released an output needing seq ${s} but its backup holds only ${held}`);
  }

  #checkInvariants(node: SimNode): void {
    const c = node.core;
    if (c.role === 'primary' && c.live) {
      const other = this.#liveByEpoch.get(c.epoch);
      if (other && other !== node.name) {
        this.violation(`two live primaries in epoch ${c.epoch}: ${other} and ${node.name}`);
      }
      this.#liveByEpoch.set(c.epoch, node.name);
      // Two nodes that may both release outputs on their own at the same moment are a split brain, whatever their epochs.
      const alone = [...this.nodes.values()].filter((n) => n.alive && n.core.live && n.core.status().peer.state === 'none');
      if (alone.length > 1) this.violation(`split brain: ${alone.map((n) => `${n.name}@${n.core.epoch}`).join(' and ')} are live without a backup`);
    }
    if (c.role === 'backup') {
      const st = c.status();
      if (st.peer.state !== 'suspected' && st.icount > st.peer.icount) {
        this.violation(`backup ${node.name} at icount ${st.icount} is past its newest entry's ${st.peer.icount}`);
      }
    }
  }

  /** Runs the clock until `ms` from now. */
  runFor(ms: number): void {
    this.clock.runUntil(this.now() + ms);
  }
}
