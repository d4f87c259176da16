/**
 * Virtual CPU speed: instructions per second of the `cpu` guest (a sieve,
 * compute-bound) through Cpu.run(), measured side by side in one process:
 *
 * - `run(1M slices)`: how an FT node drives it (a slice between event checks),
 *   with hot code compiled to blocks (the default engine) and through the
 *   reference interpreter alone (`engine: 'interpreter'`);
 * - `run(10k slices)`: the per-slice overhead of frequent boundaries;
 * - `naive`: the same program through a straightforward interpreter (one
 *   object per instruction, string opcodes, DataView memory), the baseline the
 *   pre-decoded typed-array loop is compared with;
 * - `stateHash` cost after a slice (only dirty pages rehashed) and for a full
 *   1 MiB rehash (after restore).
 *
 * Rates are instructions per second of this process's CPU time
 * (process.cpuUsage), because the machine is shared: wall-clock rates swing
 * with other people's load. The wall-clock rate is logged beside it.
 */
import { Cpu, OP, type Program } from '@mr/vmft-cpu';
import { getGuest } from '@mr/vmft-guests';
import { median, type Benchmark } from './benchmark.ts';

/** Runs `fn` and returns [cpu seconds, wall seconds]. */
function timed(fn: () => void): [number, number] {
  const c0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  fn();
  const c = process.cpuUsage(c0);
  return [(c.user + c.system) / 1e6, Number(process.hrtime.bigint() - w0) / 1e9];
}

let lastWallIps = 0;

function ips(p: Program, instructions: number, slice: number, engine: 'blocks' | 'interpreter' = 'blocks'): number {
  const cpu = new Cpu(p, undefined, { engine });
  const [cpuS, wallS] = timed(() => {
  while (cpu.icount < instructions) {
      const why = cpu.run(Math.min(instructions, cpu.icount + slice));
    if (why !== 'limit') throw new Error(`cpu guest stopped: ${why} ${cpu.faultMessage ?? ''}`);
  }
  });
  lastWallIps = instructions / wallS;
  return instructions / cpuS;
}

const NAMES = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

/** A deliberately plain interpreter for the opcodes the cpu guest uses. */
function naiveIps(p: Program, instructions: number): number {
  const prog = [] as { op: string; a: number; b: number; c: number }[];
  for (let i = 0; i < p.code.length; i += 4) prog.push({ op: NAMES.get(p.code[i]! & 0xff)!, a: p.code[i + 1]!, b: p.code[i + 2]!, c: p.code[i + 3]! });
  const regs: number[] = new Array(17).fill(0);
  const mem = new DataView(new ArrayBuffer(1 << 20));
  new Uint8Array(mem.buffer).set(p.data, p.dataBase);
  let pc = p.entry;
  let n = 0;
  const [cpuS] = timed(() => {
  while (n < instructions) {
    const ins = prog[pc]!;
    pc++;
    n++;
    switch (ins.op) {
      case 'MOV_I': regs[ins.a] = ins.c; break;
      case 'ADD_I': regs[ins.a] = (regs[ins.b]! + ins.c) | 0; break;
      case 'ADD_R': regs[ins.a] = (regs[ins.b]! + regs[ins.c]!) | 0; break;
      case 'MUL_R': regs[ins.a] = Math.imul(regs[ins.b]!, regs[ins.c]!); break;
      case 'LDW': regs[ins.a] = mem.getInt32(regs[ins.b]! + ins.c, true); break;
      case 'STW': mem.setInt32(regs[ins.b]! + ins.c, regs[ins.a]!, true); break;
      case 'LDB': regs[ins.a] = mem.getUint8(regs[ins.b]! + ins.c); break;
      case 'STB': mem.setUint8(regs[ins.b]! + ins.c, regs[ins.a]! & 0xff); break;
      case 'MEMSET': new Uint8Array(mem.buffer).fill(regs[ins.b]! & 0xff, regs[ins.a]!, regs[ins.a]! + regs[ins.c]!); break;
      case 'BGE_I': if (regs[ins.a]! >= ins.b) pc = ins.c; break;
      case 'BGE_R': if (regs[ins.a]! >= regs[ins.b]!) pc = ins.c; break;
      case 'BNE_I': if (regs[ins.a] !== ins.b) pc = ins.c; break;
      case 'BLT_I': if (regs[ins.a]! < ins.b) pc = ins.c; break;
      case 'BGEU_I': if (regs[ins.a]! >>> 0 >= ins.b >>> 0) pc = ins.c; break;
      case 'JMP': pc = ins.c; break;
      default: throw new Error(`naive interpreter: ${ins.op} not supported`);
    }
  }
  });
  return instructions / cpuS;
}

function hashMs(p: Program, full: boolean): number {
  const cpu = new Cpu(p);
  cpu.run(5_000_000);
  cpu.stateHash();
  if (full) cpu.restore(cpu.snapshot()); // marks every page stale
  else cpu.run(cpu.icount + 100_000);
  return timed(() => cpu.stateHash())[0] * 1e3;
}

export const vmCpu: Benchmark = {
  name: 'vm-cpu',
  description: 'virtual CPU instructions/s on the cpu guest (sieve), vs slice size and a naive interpreter',
  async run({ quick, log }) {
    const p = getGuest('cpu');
    const n = quick ? 50_000_000 : 300_000_000;
    const reps = quick ? 2 : 3;
    ips(p, 20_000_000, 1_000_000); // warm up the JIT
    ips(p, 20_000_000, 1_000_000, 'interpreter');
    const big: number[] = [], small: number[] = [], naive: number[] = [], interp: number[] = [];
    for (let r = 0; r < reps; r++) {
      big.push(ips(p, n, 1_000_000));
      const wall = lastWallIps;
      interp.push(ips(p, n, 1_000_000, 'interpreter'));
      small.push(ips(p, n, 10_000));
      naive.push(naiveIps(p, n / 5));
      log(`rep ${r + 1}: 1M slices ${(big.at(-1)! / 1e6).toFixed(1)} M/s (interpreter only ${(interp.at(-1)! / 1e6).toFixed(1)} M/s), 10k slices ${(small.at(-1)! / 1e6).toFixed(1)} M/s, naive ${(naive.at(-1)! / 1e6).toFixed(1)} M/s (per CPU second; 1M slices wall-clock ${(wall / 1e6).toFixed(1)} M/s)`);
    }
    hashMs(p, false); // warm up
    const hashDirty = median([hashMs(p, false), hashMs(p, false), hashMs(p, false)]);
    const hashFull = median([hashMs(p, true), hashMs(p, true), hashMs(p, true)]);
    const res = {
      mips_1M_slices: +(median(big) / 1e6).toFixed(1),
      mips_1M_slices_interpreter: +(median(interp) / 1e6).toFixed(1),
      blocks_over_interpreter: +(median(big) / median(interp)).toFixed(2),
      mips_goal: '>= 600 with compiled blocks',
      mips_10k_slices: +(median(small) / 1e6).toFixed(1),
      mips_naive: +(median(naive) / 1e6).toFixed(1),
      ratio_vs_naive: +(median(big) / median(naive)).toFixed(2),
      ratio_10k_vs_1M: +(median(small) / median(big)).toFixed(3),
      state_hash_ms_after_100k_instr: +hashDirty.toFixed(3),
      state_hash_ms_full_1MiB: +hashFull.toFixed(3),
    };
    log(`median: ${res.mips_1M_slices} M instr/s with compiled blocks (goal >= 600), ${res.blocks_over_interpreter}x the interpreter alone, ${res.ratio_vs_naive}x the naive interpreter; 10k slices at ${res.ratio_10k_vs_1M} of 1M; stateHash ${res.state_hash_ms_after_100k_instr} ms incremental, ${res.state_hash_ms_full_1MiB} ms full`);
    return res;
  },
};
