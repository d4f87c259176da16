import { assemble, Cpu, nullHost, type DeviceHost, type Program } from '../src/index.ts';

/** Opcodes seen by exec(), to check that the instruction tests cover the whole ISA. */
export const seenOps = new Set<number>();

export function prog(src: string, name = 't.s'): Program {
  const p = assemble(src, name);
  for (let i = 0; i < p.code.length; i += 4) seenOps.add(p.code[i]! & 0xff);
  return p;
}

/** Assembles `src` and runs it until it stops (halt, fault or wfi). */
export function exec(src: string, host: DeviceHost = nullHost): Cpu {
  const cpu = new Cpu(prog(src), host, { memorySize: 65536 });
  cpu.run(1_000_000);
  return cpu;
}

export function reg(cpu: Cpu, r: number): number {
  return cpu.regs[r]!;
}
