/**
 * A tiny deterministic machine for protocol transcripts, with the same
 * promises as @mr/vmft-cpu's Cpu (see src/machine.ts) and readable icounts:
 *
 * - Idle (no job, not busy): one WFI instruction, then waits.
 * - A packet (NIC, line 1) starts a 4-instruction job: #1 reads RANDOM,
 *   #4 transmits "re:<packet>:<count of requests>" and re-arms the NIC.
 *   A packet "disk <n>" issues a disk read of block n at #2 and waits for
 *   its completion (line 2), then transmits "re:disk:<data>:<count>". A packet
 *   "write <n> <text>" writes text to block n at #2.
 * - A timer interrupt (line 0) starts a 2-instruction job: #1 reads CLOCK.
 * - `busy`: with no job, it computes instead of waiting.
 * - The guest programs a timer period with `timer=<ms>` at construction.
 * Interrupts are taken when no job is running.
 */
import type { DeviceHost, DiskRequest, ExitReason, Machine } from '../../src/index.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Job {
  kind: 'req' | 'timer' | 'disk-wait';
  step: number;
  text: string;
}

interface ToyState {
  icount: number;
  acc: number;
  waiting: boolean;
  halted: boolean;
  rxArmed: boolean;
  rx: string | null;
  pending: number;
  job: Job | null;
  requests: number;
  diskData: string | null;
  timerPeriodMs: number;
  busy: boolean;
}

function mix(a: number, b: number): number {
  let h = (a ^ b) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  return (h ^ (h >>> 13)) >>> 0;
}

const nullHost: DeviceHost = { read: () => 0, transmit: () => {}, disk: () => {} };

export class ToyMachine implements Machine {
  #s: ToyState;
  #host: DeviceHost = nullHost;

  constructor(opts: { busy?: boolean; timerPeriodMs?: number } = {}) {
    this.#s = {
      icount: 0, acc: 1, waiting: false, halted: false, rxArmed: true, rx: null, pending: 0, job: null,
      requests: 0, diskData: null, timerPeriodMs: opts.timerPeriodMs ?? 0, busy: opts.busy ?? false,
    };
  }

  static restore(bytes: Uint8Array): ToyMachine {
    const m = new ToyMachine();
    m.#s = JSON.parse(dec.decode(bytes)) as ToyState;
    return m;
  }

  get icount(): number { return this.#s.icount; }
  get waiting(): boolean { return this.#s.waiting; }
  get halted(): boolean { return this.#s.halted; }
  get faulted(): boolean { return false; }
  get faultMessage(): string | null { return null; }
  get timerPeriodMs(): number { return this.#s.timerPeriodMs; }
  get nicRxReady(): boolean { return this.#s.rxArmed; }
  get acc(): number { return this.#s.acc; }
  get requests(): number { return this.#s.requests; }

  setHost(host: DeviceHost): void { this.#host = host; }

  raiseInterrupt(line: number): void { this.#s.pending |= 1 << line; }

  deliverPacket(packet: Uint8Array): boolean {
    if (!this.#s.rxArmed) return false;
    this.#s.rxArmed = false;
    this.#s.rx = dec.decode(packet);
    this.#s.pending |= 2;
    return true;
  }

  completeDiskRead(data: Uint8Array): void {
    this.#s.diskData = dec.decode(data).replace(/\0+$/, '');
    this.#s.pending |= 4;
  }

  snapshot(): Uint8Array { return enc.encode(JSON.stringify(this.#s)); }

  stateHash(): string {
    const t = JSON.stringify(this.#s);
    let h = 0x811c9dc5;
    for (let i = 0; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 0x01000193) >>> 0;
    return h.toString(16).padStart(8, '0');
  }

  run(until: number): ExitReason {
    const s = this.#s;
    if (s.halted) return 'halt';
    if (s.waiting) {
      if (s.pending === 0) return 'wfi';
      s.waiting = false;
    }
    while (s.icount < until) {
      if (!s.job || (s.job.kind === 'disk-wait' && s.pending & 4)) this.#take();
      const j = s.job;
      if (!j) {
        if (!s.busy) {
          s.icount++; // the WFI
          s.waiting = true;
          if (s.pending === 0) return 'wfi';
          s.waiting = false;
          continue;
        }
        s.acc = mix(s.acc, s.icount);
        s.icount++;
        continue;
      }
      if (j.kind === 'disk-wait') {
        s.icount++; // WFI until the disk completes
        s.waiting = true;
        if ((s.pending & 4) === 0) return 'wfi';
        s.waiting = false;
        continue;
      }
      const at = s.icount;
      j.step++;
      if (j.kind === 'timer') {
        if (j.step === 1) {
          const v = this.#host.read(0x02, at);
          if (v === undefined) { j.step--; return 'io-wait'; }
          s.acc = mix(s.acc, v);
        } else s.job = null;
      } else {
        if (j.step === 1) {
          const v = this.#host.read(0x04, at);
          if (v === undefined) { j.step--; return 'io-wait'; }
          s.acc = mix(s.acc, v);
        } else if (j.step === 2) {
          const m = /^disk (\d+)$/.exec(j.text);
          const w = /^write (\d+) (.*)$/.exec(j.text);
          if (m) {
            const req: DiskRequest = { op: 'read', block: Number(m[1]), count: 1, addr: 0 };
            this.#host.disk(req, at);
            s.job = { kind: 'disk-wait', step: 0, text: j.text };
          } else if (w) {
            this.#host.disk({ op: 'write', block: Number(w[1]), count: 1, addr: 0, data: enc.encode(w[2]!) }, at);
          }
        } else if (j.step === 4) {
          s.requests++;
          this.#host.transmit(enc.encode(`re:${j.text}:${s.requests}`), at);
          s.rxArmed = true;
          s.job = null;
        }
      }
      s.icount++;
    }
    return 'limit';
  }

  /** Takes the lowest pending line (when no job runs, or the disk wait ends). */
  #take(): void {
    const s = this.#s;
    if (s.job?.kind === 'disk-wait') {
      // The reply ("re:disk:<data>:<n>") goes out two instructions later.
      s.pending &= ~4;
      s.job = { kind: 'req', step: 2, text: `disk:${s.diskData ?? ''}` };
      return;
    }
    if (s.pending & 1) {
      s.pending &= ~1;
      s.job = { kind: 'timer', step: 0, text: '' };
    } else if (s.pending & 2) {
      s.pending &= ~2;
      s.job = { kind: 'req', step: 0, text: s.rx ?? '' };
    } else if (s.pending & 4) {
      s.pending &= ~4; // a stray completion
    }
  }
}
