import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runTranscript, type TranscriptCommand } from '@mr/sim';
import { assemble, Cpu, type DeviceHost } from '../src/index.ts';

/**
 * Data-driven host sessions (testdata/*.txt). Commands:
 *   load                    assemble the input lines and boot a CPU (64 KiB)
 *   values V...             queue values for the host's read callback (empty queue → io-wait)
 *   run N | run +N          run until icount N (or N more); prints the exit reason and callbacks
 *   irq LINE                raiseInterrupt
 *   packet HEX...           deliverPacket
 *   disk-done HEX...        completeDiskRead
 *   regs rA rB ...          register values
 *   mem SYMBOL|ADDR LEN     memory bytes in hex
 *   state                   pc, icount, ie, waiting, pending
 *   snapshot / restore      keep a snapshot, restore it into a new CPU
 *   hash                    state hash
 */
function session(): (cmd: TranscriptCommand) => string[] {
  let cpu: Cpu | undefined;
  let symbols: Record<string, number> = {};
  const values: number[] = [];
  let log: string[] = [];
  let snap: Uint8Array | undefined;
  const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  const host: DeviceHost = {
    read: (port, icount) => {
      const v = values.shift();
      log.push(`  read port=${port} icount=${icount} -> ${v ?? 'unavailable'}`);
      return v;
    },
    transmit: (p, icount) => log.push(`  transmit icount=${icount} [${hex(p)}]`),
    disk: (r, icount) => log.push(`  disk ${r.op} block=${r.block} count=${r.count} addr=${r.addr} icount=${icount}`),
    write: (port, value, icount) => log.push(`  write port=${port} value=${value} icount=${icount}`),
  };
  const need = (): Cpu => {
    if (!cpu) throw new Error('no program loaded');
    return cpu;
  };
  const bytes = (args: string[]): Uint8Array => Uint8Array.from(args.map((h) => parseInt(h, 16)));
  return (cmd) => {
    switch (cmd.name) {
      case 'load': {
        const p = assemble(cmd.input.join('\n'), 'session.s');
        symbols = p.symbols;
        cpu = new Cpu(p, host, { memorySize: 65536 });
        return [`entry=${p.entry} instructions=${p.code.length / 4} data=${p.data.length}`];
      }
      case 'values': values.push(...cmd.args.map(Number)); return ['ok'];
      case 'run': {
        const c = need();
        const a = cmd.args[0] ?? '+1000';
        const until = a.startsWith('+') ? c.icount + Number(a.slice(1)) : Number(a);
        log = [];
        const why = c.run(until);
        return [`${why} icount=${c.icount} pc=${c.pc}${why === 'fault' ? ` (${c.faultMessage})` : ''}`, ...log];
      }
      case 'irq': need().raiseInterrupt(Number(cmd.args[0])); return [`pending=${need().irqPending}`];
      case 'packet': return [`delivered=${need().deliverPacket(bytes(cmd.args))}`];
      case 'disk-done': need().completeDiskRead(bytes(cmd.args)); return [`pending=${need().irqPending}`];
      case 'regs': return [cmd.args.map((r) => `${r}=${need().regs[Number(r.slice(1))]}`).join(' ')];
      case 'mem': {
        const at = symbols[cmd.args[0]!] ?? Number(cmd.args[0]);
        return [hex(need().readMemory(at, Number(cmd.args[1])))];
      }
      case 'state': {
        const c = need();
        return [`pc=${c.pc} icount=${c.icount} ie=${c.ie} waiting=${c.waiting} pending=${c.irqPending} halted=${c.halted}`];
      }
      case 'snapshot': snap = need().snapshot(); return [`bytes=${snap.length}`];
      case 'restore': {
        const c = new Cpu(need().program, host, { memorySize: 65536 });
        c.restore(snap!);
        cpu = c;
        return [`icount=${c.icount} pc=${c.pc}`];
      }
      case 'hash': return [need().stateHash()];
      default: throw new Error(`unknown command ${cmd.name}`);
    }
  };
}

for (const name of ['interrupts', 'devices']) {
  test(`transcript ${name}`, () => {
    runTranscript(fileURLToPath(new URL(`./testdata/${name}.txt`, import.meta.url)), session(), { update: process.env['UPDATE'] === '1' });
  });
}
