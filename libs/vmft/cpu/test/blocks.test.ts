/**
 * The block compiler (jit.ts) against the reference interpreter: random
 * programs (every compiled instruction kind, faults included: misaligned and
 * out-of-range accesses, division by zero, stack overflow) and random event
 * logs (slices of random length, DMA writes and interrupts at the slice
 * boundaries), run through both engines; at every event the instruction
 * count, pc, registers, exit reason, fault message and state hash agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Cpu, OP, PORT, IRQ, type DeviceHost, type Program } from '../src/index.ts';
import { programId } from '../src/program.ts';

const MEM = 65536;
const R = fc.integer({ min: 0, max: 15 });
const RZ = fc.integer({ min: 0, max: 16 }); // a source may be the zero register
const IMM = fc.oneof(fc.integer({ min: -8, max: 8 }), fc.integer({ min: -70000, max: 70000 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
const ADDR = fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: MEM - 16, max: MEM + 16 }), fc.integer({ min: -16, max: 16 }));

type Ins = [number, number, number, number];

/** One instruction of a program of `n` instructions (targets within it). */
function instruction(n: number): fc.Arbitrary<Ins> {
  const target = fc.integer({ min: 0, max: n - 1 });
  const aluR = fc.constantFrom(OP.ADD_R, OP.SUB_R, OP.MUL_R, OP.AND_R, OP.OR_R, OP.XOR_R, OP.SHL_R, OP.SHR_R, OP.SAR_R, OP.SLT_R, OP.SLTU_R, OP.DIV_R, OP.DIVU_R, OP.REM_R, OP.REMU_R);
  const aluI = fc.constantFrom(OP.ADD_I, OP.SUB_I, OP.MUL_I, OP.AND_I, OP.OR_I, OP.XOR_I, OP.SHL_I, OP.SHR_I, OP.SAR_I, OP.SLT_I, OP.SLTU_I, OP.DIV_I, OP.DIVU_I, OP.REM_I, OP.REMU_I);
  const brR = fc.constantFrom(OP.BEQ_R, OP.BNE_R, OP.BLT_R, OP.BGE_R, OP.BGT_R, OP.BLE_R, OP.BLTU_R, OP.BGEU_R);
  const brI = fc.constantFrom(OP.BEQ_I, OP.BNE_I, OP.BLT_I, OP.BGE_I, OP.BGT_I, OP.BLE_I, OP.BLTU_I, OP.BGEU_I);
  const mem = fc.constantFrom(OP.LDW, OP.LDB, OP.LDH, OP.STW, OP.STB, OP.STH);
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(aluR, R, RZ, RZ).map(([o, a, b, c]) => [o, a, b, c] as Ins) },
    { weight: 6, arbitrary: fc.tuple(aluI, R, RZ, IMM).map(([o, a, b, c]) => [o, a, b, c] as Ins) },
    { weight: 3, arbitrary: fc.tuple(R, IMM).map(([a, c]) => [OP.MOV_I, a, 0, c] as Ins) },
    { weight: 2, arbitrary: fc.tuple(R, RZ).map(([a, b]) => [OP.MOV_R, a, b, 0] as Ins) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(OP.NOT, OP.NEG), R, RZ).map(([o, a, b]) => [o, a, b, 0] as Ins) },
    { weight: 4, arbitrary: fc.tuple(mem, R, RZ, ADDR).map(([o, a, b, c]) => [o, a, b, c] as Ins) },
    { weight: 4, arbitrary: fc.tuple(brR, RZ, RZ, target).map(([o, a, b, c]) => [o, a, b, c] as Ins) },
    { weight: 4, arbitrary: fc.tuple(brI, RZ, IMM, target).map(([o, a, b, c]) => [o, a, b, c] as Ins) },
    { weight: 2, arbitrary: target.map((c) => [OP.JMP, 0, 0, c] as Ins) },
    { weight: 1, arbitrary: target.map((c) => [OP.CALL, 0, 0, c] as Ins) },
    { weight: 1, arbitrary: fc.constant([OP.RET, 0, 0, 0] as Ins) },
    { weight: 1, arbitrary: R.map((a) => [OP.PUSH, a, 0, 0] as Ins) },
    { weight: 1, arbitrary: R.map((a) => [OP.POP, a, 0, 0] as Ins) },
    { weight: 1, arbitrary: fc.constant([OP.NOP, 0, 0, 0] as Ins) },
    // Not compiled: they end a block (device reads, interrupts on, a wait, a halt).
    { weight: 1, arbitrary: R.map((a) => [OP.IN, a, 0, PORT.RANDOM] as Ins) },
    { weight: 1, arbitrary: fc.constant([OP.EI, 0, 0, 0] as Ins) },
    { weight: 1, arbitrary: fc.constant([OP.DI, 0, 0, 0] as Ins) },
    { weight: 1, arbitrary: fc.constant([OP.HALT, 0, 0, 0] as Ins) },
  );
}

const program = fc.integer({ min: 2, max: 40 }).chain((n) =>
  fc.record({
    ins: fc.array(instruction(n), { minLength: n, maxLength: n }),
    sp: fc.oneof(fc.constant(MEM), fc.integer({ min: 0, max: MEM }).map((x) => x & ~3)),
    vector: fc.integer({ min: 0, max: n - 1 }),
  }),
);

/** Sets SP and the timer's interrupt vector, then the random code (entry 0 jumps over the prologue). */
function build(p: { ins: Ins[]; sp: number; vector: number }): Program {
  const pro: Ins[] = [
    [OP.MOV_I, 15, 0, p.sp],
    [OP.MOV_I, 1, 0, p.vector + 4],
    [OP.OUT_R, 1, 0, PORT.IVEC + IRQ.TIMER],
    [OP.MOV_I, 1, 0, 0],
  ];
  const all = [...pro, ...p.ins.map(([o, a, b, c]) => [o, a, b, c >= 0 && isTarget(o) ? c + pro.length : c] as Ins)];
  const code = new Int32Array(all.flat());
  const data = new Uint8Array(0);
  return { name: 'random.s', code, data, dataBase: 0, entry: 0, symbols: {}, lines: new Int32Array(all.length), id: programId(code, data, 0, 0) };
}

function isTarget(op: number): boolean {
  return (op >= OP.BEQ_R && op <= OP.BGEU_I) || op === OP.JMP || op === OP.CALL;
}

const events = fc.array(
  fc.record({
    slice: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 3000 })),
    dma: fc.option(fc.record({ addr: fc.integer({ min: 0, max: MEM - 8 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }), { nil: undefined }),
    irq: fc.boolean(),
  }),
  { minLength: 1, maxLength: 40 },
);

function host(): DeviceHost {
  let x = 12345;
  return {
    read: () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0),
    transmit: () => {},
    disk: () => {},
    write: () => {},
  } as DeviceHost;
}

function look(cpu: Cpu, why: string): string {
  return JSON.stringify({ why, icount: cpu.icount, pc: cpu.pc, regs: [...cpu.regs], fault: cpu.faultMessage, halted: cpu.halted, waiting: cpu.waiting, ie: cpu.ie, hash: cpu.stateHash() });
}

test('compiled blocks and the interpreter agree at every event: same icount, pc, registers, exit, fault and state hash', () => {
  fc.assert(
    fc.property(program, events, fc.constantFrom(1, 2, 16), (p, evs, hot) => {
      const prog = build(p);
      const ref = new Cpu(prog, host(), { memorySize: MEM, engine: 'interpreter' });
      // Blocks compiled at the first entry (hotEntries 1) or once hot (16): both against the reference.
      const jit = new Cpu(prog, host(), { memorySize: MEM, engine: 'blocks', hotEntries: hot });
      for (const e of evs) {
        // Both engines see the same events at the same instruction counts.
        if (e.dma) {
          ref.dmaWrite(e.dma.addr, e.dma.bytes);
          jit.dmaWrite(e.dma.addr, e.dma.bytes);
        }
        if (e.irq) {
          ref.raiseInterrupt(IRQ.TIMER);
          jit.raiseInterrupt(IRQ.TIMER);
        }
        const a = ref.run(ref.icount + e.slice);
        const b = jit.run(jit.icount + e.slice);
        assert.equal(look(jit, b), look(ref, a));
      }
    }),
    { numRuns: 600 },
  );
});

test('a hot loop runs as a compiled block and still stops at exactly the instruction count asked for', () => {
  // add r1, 1; blt r1, big, 0 — a tight self-loop, compiled after it is hot.
  const code = new Int32Array([OP.ADD_I, 1, 1, 1, OP.BLT_I, 1, 1 << 30, 0, OP.HALT, 0, 0, 0]);
  const data = new Uint8Array(0);
  const prog: Program = { name: 'loop.s', code, data, dataBase: 0, entry: 0, symbols: {}, lines: new Int32Array(3), id: programId(code, data, 0, 0) };
  const ref = new Cpu(prog, undefined, { memorySize: 4096, engine: 'interpreter' });
  const jit = new Cpu(prog, undefined, { memorySize: 4096 });
  for (const until of [7, 100, 101, 5_000, 5_001, 1_000_003]) {
    assert.equal(jit.run(until), ref.run(until));
    assert.equal(jit.icount, until);
    assert.equal(jit.regs[1], ref.regs[1]);
    assert.equal(jit.pc, ref.pc);
  }
});
