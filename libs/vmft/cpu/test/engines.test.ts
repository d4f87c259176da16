import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assemble, Cpu, IRQ, NUM_IRQ_LINES, OP, PORT, type DeviceHost, type Program } from '../src/index.ts';
import { programId } from '../src/program.ts';
import { getGuest } from '../../guests/src/index.ts';

// The compiled blocks (jit.ts) against the reference interpreter, beside blocks.test.ts: the same program and the
// same events at the same instruction counts must give the same state hash at every
// event, the same device calls at the same instruction counts, and the same fault.

const MEM = 65536;
const WRITES_A = new Set<number>([OP.MOV_R, OP.MOV_I, OP.ADD_R, OP.ADD_I, OP.SUB_R, OP.SUB_I, OP.MUL_R, OP.MUL_I,
  OP.DIV_R, OP.DIV_I, OP.DIVU_R, OP.DIVU_I, OP.REM_R, OP.REM_I, OP.REMU_R, OP.REMU_I, OP.AND_R, OP.AND_I, OP.OR_R,
  OP.OR_I, OP.XOR_R, OP.XOR_I, OP.SHL_R, OP.SHL_I, OP.SHR_R, OP.SHR_I, OP.SAR_R, OP.SAR_I, OP.SLT_R, OP.SLT_I,
  OP.SLTU_R, OP.SLTU_I, OP.NOT, OP.NEG, OP.LDW, OP.LDB, OP.LDH, OP.POP, OP.IN, OP.HASH]);
const IMM_B = new Set<number>([OP.BEQ_I, OP.BNE_I, OP.BLT_I, OP.BGE_I, OP.BGT_I, OP.BLE_I, OP.BLTU_I, OP.BGEU_I, OP.OUT_I]);
const REG_C = new Set<number>([OP.ADD_R, OP.SUB_R, OP.MUL_R, OP.DIV_R, OP.DIVU_R, OP.REM_R, OP.REMU_R, OP.AND_R, OP.OR_R,
  OP.XOR_R, OP.SHL_R, OP.SHR_R, OP.SAR_R, OP.SLT_R, OP.SLTU_R, OP.MEMCPY, OP.MEMSET, OP.MEMCMP, OP.HASH]);
const TARGET_C = new Set<number>([OP.BEQ_R, OP.BEQ_I, OP.BNE_R, OP.BNE_I, OP.BLT_R, OP.BLT_I, OP.BGE_R, OP.BGE_I, OP.BGT_R,
  OP.BGT_I, OP.BLE_R, OP.BLE_I, OP.BLTU_R, OP.BLTU_I, OP.BGEU_R, OP.BGEU_I, OP.JMP, OP.CALL]);
const MEMORY = new Set<number>([OP.LDW, OP.STW, OP.LDB, OP.STB, OP.LDH, OP.STH]);
const PORTS = [PORT.CONSOLE, PORT.CLOCK, PORT.CLOCK_HI, PORT.RANDOM, PORT.IRQ_PENDING, PORT.IRQ_MASK, PORT.IVEC, PORT.IVEC + 1,
  PORT.IVEC + 2, PORT.TIMER_PERIOD, PORT.NIC_RX_ADDR, PORT.NIC_RX_CAP, PORT.NIC_RX_LEN, PORT.NIC_TX_ADDR, PORT.NIC_TX_LEN,
  PORT.DISK_ADDR, PORT.DISK_BLOCK, PORT.DISK_COUNT, PORT.DISK_CMD, PORT.DISK_STATUS, 0x80, 0x9f];

/** Opcodes with weights: mostly arithmetic, memory and branches, some of everything else. */
const OPS: [number, number][] = [
  ...Object.values(OP).filter((op) => op !== OP.FAULT).map((op): [number, number] => [op, 1]),
  [OP.MOV_I, 8], [OP.ADD_I, 6], [OP.AND_I, 6], [OP.LDW, 4], [OP.STW, 4], [OP.LDB, 3], [OP.STB, 3], [OP.BLT_R, 3],
  [OP.BNE_I, 3], [OP.ADD_R, 3], [OP.MUL_R, 2], [OP.JMP, 2], [OP.CALL, 2], [OP.RET, 2], [OP.PUSH, 2], [OP.POP, 2],
];

interface Insn { op: number; a: number; b: number; c: number; d: number }

function insnArb(n: number): fc.Arbitrary<Insn> {
  const small = fc.oneof(fc.integer({ min: -8, max: 64 }), fc.integer({ min: 0, max: MEM }).map((v) => v & ~3), fc.integer());
  return fc.record({
    op: fc.oneof(...OPS.map(([op, weight]) => ({ arbitrary: fc.constant(op), weight }))),
    a: fc.integer({ min: 0, max: 16 }),
    b: fc.integer({ min: 0, max: 16 }),
    imm: small,
    reg: fc.integer({ min: 0, max: 16 }),
    target: fc.integer({ min: 0, max: n - 1 }),
    port: fc.constantFrom(...PORTS),
    d: fc.integer({ min: 0, max: 15 }),
  }).map(({ op, a, b, imm: given, reg, target, port, d }) => {
    let imm = given;
    const ra = WRITES_A.has(op) ? a % 16 : a;
    let rb = IMM_B.has(op) ? imm : b;
    // Most memory operands are an absolute address in memory (zero register + offset), so programs run for long.
    if (MEMORY.has(op) && (d & 3) !== 0) { rb = 16; imm = (imm >>> 0) % (MEM - 4) & ~3; }
    let c = imm;
    if (REG_C.has(op)) c = reg;
    else if (TARGET_C.has(op)) c = target;
    else if (op === OP.IN || op === OP.OUT_R || op === OP.OUT_I) c = port;
    // A value loaded for a computed jump, an interrupt vector or a stack pointer often names an instruction.
    if (op === OP.MOV_I && (imm & 1) === 1) c = target;
    return { op, a: ra, b: rb, c, d };
  });
}

function program(insns: Insn[], entry: number): Program {
  const code = new Int32Array(insns.length * 4);
  insns.forEach((x, i) => code.set([x.op | (x.d << 8), x.a, x.b, x.c], i * 4));
  const data = new Uint8Array(256).map((_, i) => (i * 37) & 0xff);
  return { name: 'random.s', code, data, dataBase: 1024, entry, symbols: {}, lines: new Int32Array(insns.length), id: programId(code, data, 1024, entry) };
}

type Ev = { gap: number; kind: 'timer' | 'nic' | 'disk' | 'line'; value: number };
const evArb: fc.Arbitrary<Ev> = fc.record({
  gap: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 5000 })),
  kind: fc.constantFrom('timer' as const, 'nic' as const, 'disk' as const, 'line' as const),
  value: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

/** A host whose answers depend only on the instruction count, logging every device call. */
function host(log: string[]): DeviceHost {
  return {
    read: (port, icount) => (port === PORT.CLOCK ? 1_700_000_000_000 + icount : Math.imul(icount + port, 2654435761) >>> 0),
    transmit: (packet, icount) => { log.push(`tx@${icount}:${packet.join(',')}`); },
    disk: (req, icount) => { log.push(`disk@${icount}:${req.op}:${req.block}:${req.count}:${req.addr}`); },
    write: (port, value, icount) => { log.push(`out@${icount}:${port}=${value}`); },
  };
}

/** Plays the events, slicing run() at most `slice` instructions at a time; returns what a replica would be compared on. */
function play(cpu: Cpu, events: Ev[], slice: number): string[] {
  const seen: string[] = [];
  let at = 0;
  const stopped = (): boolean => cpu.halted || cpu.faulted;
  for (const e of events) {
    at += e.gap;
    while (cpu.icount < at && !stopped()) {
      const why = cpu.run(Math.min(at, cpu.icount + slice));
      if (why !== 'limit') { seen.push(`${why}@${cpu.icount}`); break; }
    }
    if (stopped()) break;
    if (e.kind === 'timer') cpu.raiseInterrupt(IRQ.TIMER);
    else if (e.kind === 'line') cpu.raiseInterrupt(e.value % NUM_IRQ_LINES);
    else if (e.kind === 'nic') cpu.deliverPacket(Uint8Array.from([e.value & 0xff, e.value >>> 8 & 0xff, 7]));
    else if (cpu.diskStatus === 1) cpu.completeDiskRead(new Uint8Array(512).fill(e.value & 0xff), (e.value & 1) === 0);
    seen.push(`${e.kind}@${cpu.icount}:${cpu.stateHash()}:${cpu.takeDirtyPages().join(',')}`);
    at = Math.max(at, cpu.icount);
  }
  if (!stopped()) seen.push(`end:${cpu.run(cpu.icount + 3000)}@${cpu.icount}`);
  seen.push(`final:${cpu.stateHash()}:${cpu.pc}:${cpu.faultMessage}`);
  return seen;
}

test('random programs and event logs: the compiled engine matches the interpreter at every event', () => {
  fc.assert(fc.property(
    fc.integer({ min: 4, max: 60 }).chain((n) => fc.tuple(fc.array(insnArb(n), { minLength: n, maxLength: n }), fc.integer({ min: 0, max: n - 1 }))),
    fc.array(evArb, { maxLength: 60 }),
    fc.integer({ min: 1, max: 5000 }),
    ([insns, entry], events, slice) => {
      const p = program(insns, entry);
      const refLog: string[] = [], jitLog: string[] = [];
      const ref = new Cpu(p, host(refLog), { memorySize: MEM, engine: 'interpreter' });
      const jit = new Cpu(p, host(jitLog), { memorySize: MEM, hotEntries: 1 });
      const a = play(ref, events, 1e9);
      const b = play(jit, events, slice);
      assert.deepEqual(b, a);
      assert.deepEqual(jitLog, refLog);
      assert.deepEqual(jit.snapshot(), ref.snapshot());
    },
  ), { numRuns: 200 });
});

test('the guests run the same under both engines, with the same device calls at the same instruction counts', () => {
  for (const name of ['cpu', 'kv', 'bank', 'timer']) {
    const p = getGuest(name);
    const events: Ev[] = Array.from({ length: 60 }, (_, i) => ({ gap: 997 * (i % 7) + 13, kind: i % 3 === 0 ? 'nic' : 'timer', value: i * 7919 }));
    const refLog: string[] = [], jitLog: string[] = [];
    const ref = new Cpu(p, host(refLog), { engine: 'interpreter' });
    const jit = new Cpu(p, host(jitLog), { hotEntries: 1 });
    ref.run(200_000);
    jit.run(200_000);
    assert.deepEqual(play(jit, events, 333), play(ref, events, 1e9), name);
    assert.deepEqual(jitLog, refLog, name);
  }
});

test('a hot loop stops at exactly the instruction count asked for, wherever it falls in a block', () => {
  const p = getGuest('cpu');
  const ref = new Cpu(p, undefined, { engine: 'interpreter' });
  const jit = new Cpu(p, undefined, { hotEntries: 1 });
  for (const until of [1, 2, 3, 5, 8, 13, 1000, 1001, 1002, 65_537, 1_000_003, 3_000_000]) {
    assert.equal(jit.run(until), 'limit');
    assert.equal(ref.run(until), 'limit');
    assert.equal(jit.icount, until);
    assert.equal(jit.stateHash(), ref.stateHash(), `at ${until}`);
  }
});

test('every arithmetic, shift and compare at the edges of 32 bits: the same registers, memory and faults in both engines', () => {
  const edges = [0, 1, -1, 2, 7, 31, 32, 33, 0x7fffffff, -0x80000000, 0x55555555, -7];
  const binary = ['add', 'sub', 'mul', 'div', 'divu', 'rem', 'remu', 'and', 'or', 'xor', 'shl', 'shr', 'sar', 'slt', 'sltu'];
  const divides = new Set(['div', 'divu', 'rem', 'remu']);
  // Each result is then used where the sign or the full 32 bits matter (compares, division, branches,
  // memory) and everything is stored, one 64-byte slot per form; one program per pair of values.
  const use = (i: number): string => `
    slt r4, r3, r0
    sltu r5, r3, r1
    div r6, r3, r7
    remu r8, r3, r7
    sar r9, r3, 1
    bge r3, r0, nonneg${i}
    or r10, r10, 1
nonneg${i}:
    bltu r3, r1, below${i}
    or r10, r10, 2
below${i}:
    stw r3, [r0 + ${8192 + i * 64}]
    ldh r11, [r0 + ${8194 + i * 64}]
    mov r12, ${8200 + i * 64}
    stw r4, [r12]
    stw r5, [r12 + 4]
    stw r6, [r12 + 8]
    stw r8, [r12 + 12]
    stw r9, [r12 + 16]
    stw r10, [r12 + 20]
    stw r11, [r12 + 24]`;
  const same = (src: string, what: string): void => {
    const p = assemble(src, 'edges.s');
    const ref = new Cpu(p, undefined, { memorySize: MEM, engine: 'interpreter' });
    const jit = new Cpu(p, undefined, { memorySize: MEM, hotEntries: 1 });
    assert.equal(jit.run(100_000), ref.run(100_000), what);
    assert.equal(jit.faultMessage, ref.faultMessage, what);
    assert.deepEqual([...jit.regs], [...ref.regs], what);
    assert.deepEqual(jit.snapshot(), ref.snapshot(), what);
  };
  for (const x of edges) {
    for (const y of edges) {
      const forms = [
        ...binary.filter((op) => y !== 0 || !divides.has(op)).flatMap((op) => [`${op} r3, r1, r2`, `${op} r3, r1, ${y}`]),
        ...(y === 0 ? ['not r3, r1', 'neg r3, r1', 'mov r3, r1'] : []),
      ];
      const body = forms.map((insn, i) => `    mov r1, ${x}\n    mov r2, ${y}\n    mov r7, 3\n    mov r10, 0\n    ${insn}\n${use(i)}`).join('\n');
      same(`start:\n${body}\n    halt`, `r1=${x} r2=${y}`);
    }
    for (const op of divides) same(`start:\n    mov r1, ${x}\n    ${op} r3, r1, r0\n    halt`, `${op} ${x} by zero`);
  }
});
