import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cpu, IRQ, OP, type DeviceHost } from '../src/index.ts';
import { prog, seenOps } from './helpers.ts';

const handlerSrc = `
on_timer:
    ldw r10, [sp + 4]      ; interrupted pc
    add r11, r11, 1        ; timer count
    iret
on_nic:
    add r12, r12, 1
    iret`;

function boot(body: string, host?: DeviceHost): { cpu: Cpu; sym: Record<string, number> } {
  const p = prog(`
start:
    mov r1, on_timer
    out PORT_IVEC + IRQ_TIMER, r1
    mov r1, on_nic
    out PORT_IVEC + IRQ_NIC, r1
${body}
${handlerSrc}`);
  const cpu = new Cpu(p, host, { memorySize: 65536 });
  assert.equal(cpu.run(4), 'limit');
  return { cpu, sym: p.symbols };
}

test('an interrupt raised at icount N is taken exactly there: the handler saves the pc of instruction N', () => {
  for (const n of [5, 6, 9, 17]) {
    const { cpu, sym } = boot(`
    ei
loop:
    add r5, r5, 1
    add r6, r6, 2
    jmp loop`);
    assert.equal(cpu.run(n), 'limit');
    assert.equal(cpu.icount, n);
    const pcAtN = cpu.pc;
    cpu.raiseInterrupt(IRQ.TIMER);
    assert.equal(cpu.run(n + 1), 'limit');
    assert.equal(cpu.pc, sym['on_timer']! + 1, 'first handler instruction executed');
    assert.equal(cpu.ie, false, 'handlers run with interrupts disabled');
    cpu.run(n + 3);
    assert.equal(cpu.regs[10], pcAtN);
    assert.equal(cpu.pc, pcAtN, 'iret resumes the interrupted instruction');
    assert.equal(cpu.ie, true, 'iret restores the interrupt flag');
    assert.equal(cpu.regs[15], 65536);
  }
});

test('masked interrupts stay pending and are taken right after EI or unmasking', () => {
  const { cpu, sym } = boot(`
    nop
    nop
    ei
    nop
    out PORT_IRQ_MASK, 0
    nop
    nop
    out PORT_IRQ_MASK, 0xff
    nop
    halt`);
  cpu.raiseInterrupt(IRQ.TIMER);
  assert.equal(cpu.run(6), 'limit');
  assert.equal(cpu.irqPending, 1, 'still pending while interrupts are disabled');
  assert.equal(cpu.run(7), 'limit'); // executes ei
  assert.equal(cpu.pc, sym['on_timer'], 'taken immediately after ei');
  assert.equal(cpu.run(100), 'halt');
  assert.equal(cpu.regs[11], 1);
  // Now the same with the line masked.
  const b = boot(`
    ei
    out PORT_IRQ_MASK, 0xfe
    nop
    nop
    out PORT_IRQ_MASK, 0xff
    halt`);
  b.cpu.run(6);
  b.cpu.raiseInterrupt(IRQ.TIMER);
  assert.equal(b.cpu.run(8), 'limit');
  assert.equal(b.cpu.regs[11], 0, 'masked line not taken');
  assert.equal(b.cpu.run(9), 'limit');
  assert.equal(b.cpu.pc, b.sym['on_timer'], 'taken right after unmasking');
  // DI also defers, and writing IRQ_PENDING acknowledges without taking.
  const c = boot(`
    di
    in r3, PORT_IRQ_PENDING
    out PORT_IRQ_PENDING, r3
    ei
    halt`);
  c.cpu.raiseInterrupt(IRQ.NIC);
  assert.equal(c.cpu.run(100), 'halt');
  assert.equal(c.cpu.regs[3], 1 << IRQ.NIC);
  assert.equal(c.cpu.regs[12], 0, 'acknowledged, never taken');
});

test('lower lines first; a handler that executes EI can be interrupted (nesting)', () => {
  const { cpu } = boot(`
    ei
    halt`);
  cpu.raiseInterrupt(IRQ.NIC);
  cpu.raiseInterrupt(IRQ.TIMER);
  cpu.run(5); // ei, then timer handler entered
  assert.equal(cpu.irqPending, 1 << IRQ.NIC);
  assert.equal(cpu.run(100), 'halt');
  assert.deepEqual([cpu.regs[11], cpu.regs[12]], [1, 1]);

  const p = prog(`
    mov r1, outer
    out PORT_IVEC + IRQ_NIC, r1
    mov r1, inner
    out PORT_IVEC + IRQ_TIMER, r1
    ei
    wfi
    halt
outer:
    mov r4, 1
    ei              ; allow nesting
    nop
    mov r6, r5      ; inner has run by now
    iret
inner:
    mov r5, 7
    iret`);
  const n = new Cpu(p, undefined, { memorySize: 4096 });
  assert.equal(n.run(100), 'wfi');
  n.raiseInterrupt(IRQ.NIC);
  assert.equal(n.run(8), 'limit'); // outer: mov r4
  n.raiseInterrupt(IRQ.TIMER);
  assert.equal(n.run(100), 'halt');
  assert.deepEqual([n.regs[4], n.regs[5], n.regs[6]], [1, 7, 7]);
  assert.equal(n.regs[15], 4096);
});

test('WFI: returns wfi (counted), makes no progress until an event, then the handler runs and execution continues', () => {
  const { cpu } = boot(`
    ei
    wfi
    mov r7, 1
    halt`);
  assert.equal(cpu.run(1000), 'wfi');
  assert.equal(cpu.icount, 6);
  assert.equal(cpu.waiting, true);
  assert.equal(cpu.run(1000), 'wfi');
  assert.equal(cpu.icount, 6, 'no progress while waiting');
  cpu.raiseInterrupt(IRQ.NIC);
  assert.equal(cpu.run(1000), 'halt');
  assert.deepEqual([cpu.regs[12], cpu.regs[7], cpu.icount], [1, 1, 10]);

  // With interrupts disabled, WFI wakes on a pending line without taking it.
  const d = boot(`
    wfi
    in r3, PORT_IRQ_PENDING
    halt`);
  assert.equal(d.cpu.run(1000), 'wfi');
  d.cpu.raiseInterrupt(IRQ.TIMER);
  assert.equal(d.cpu.run(1000), 'halt');
  assert.deepEqual([d.cpu.regs[3], d.cpu.regs[11]], [1, 0]);
});

test('an interrupt with no vector faults; raising a bad line throws', () => {
  const cpu = new Cpu(prog('ei\nloop:\njmp loop'), undefined, { memorySize: 4096 });
  cpu.run(3);
  cpu.raiseInterrupt(5);
  assert.equal(cpu.run(10), 'fault');
  assert.match(cpu.faultMessage!, /interrupt 5 has no valid vector/);
  assert.throws(() => cpu.raiseInterrupt(8), { code: 'FT_ERR_BAD_EVENT' });
  assert.throws(() => cpu.dmaWrite(4090, new Uint8Array(10)), { code: 'FT_ERR_BAD_EVENT' });
});

test('NIC receive: delivered only into an armed buffer, truncated to its capacity, then disarmed', () => {
  const { cpu, sym } = boot(`
    mov r1, buf
    out PORT_NIC_RX_ADDR, r1
    out PORT_NIC_RX_CAP, 4
    ei
    wfi
    in r8, PORT_NIC_RX_LEN
    halt
.data
buf: .space 8
.text`);
  assert.equal(cpu.deliverPacket(new Uint8Array([1])), false, 'not armed yet');
  assert.equal(cpu.run(100), 'wfi');
  assert.equal(cpu.nicRxReady, true);
  assert.equal(cpu.deliverPacket(new Uint8Array([1, 2, 3, 4, 5, 6])), true);
  assert.equal(cpu.nicRxReady, false);
  assert.equal(cpu.deliverPacket(new Uint8Array([9])), false, 'disarmed after one packet');
  assert.equal(cpu.run(100), 'halt');
  assert.equal(cpu.regs[8], 4);
  assert.deepEqual([...cpu.readMemory(sym['buf']!, 8)], [1, 2, 3, 4, 0, 0, 0, 0]);
  assert.throws(() => cpu.completeDiskRead(new Uint8Array(512)), { code: 'FT_ERR_BAD_EVENT' }, 'no read in flight');
});

after(() => {
  const missing = ['EI', 'DI', 'IRET', 'WFI'].filter((n) => !seenOps.has(OP[n as keyof typeof OP]));
  if (missing.length > 0) throw new Error(`instructions not covered: ${missing.join(', ')}`);
});

test('a receive buffer that runs past the end of memory gets a truncated packet, still delivered', () => {
  const cpu = new Cpu(prog('mov r1, 4094\nout PORT_NIC_RX_ADDR, r1\nout PORT_NIC_RX_CAP, 100\nhalt'), undefined, { memorySize: 4096 });
  assert.equal(cpu.run(10), 'halt');
  assert.equal(cpu.deliverPacket(new Uint8Array([1, 2, 3, 4])), true);
  assert.equal(cpu.nicRxLen, 2);
  assert.deepEqual([...cpu.readMemory(4094, 2)], [1, 2]);
});

test('run() at the current icount changes nothing, so extra calls between events at one boundary do not matter', () => {
  const a = boot(`
    ei
loop:
    add r5, r5, 1
    jmp loop`);
  const b = boot(`
    ei
loop:
    add r5, r5, 1
    jmp loop`);
  for (const x of [a, b]) x.cpu.run(20);
  a.cpu.raiseInterrupt(IRQ.NIC);
  assert.equal(a.cpu.run(20), 'limit');
  assert.equal(a.cpu.pc !== a.sym['on_nic'], true, 'not dispatched without running an instruction');
  a.cpu.raiseInterrupt(IRQ.TIMER);
  b.cpu.raiseInterrupt(IRQ.NIC);
  b.cpu.raiseInterrupt(IRQ.TIMER);
  assert.equal(a.cpu.stateHash(), b.cpu.stateHash());
  for (const x of [a, b]) x.cpu.run(21);
  assert.equal(a.cpu.pc, a.sym['on_timer']! + 1, 'the higher-priority line first, as if delivered together');
  assert.equal(a.cpu.stateHash(), b.cpu.stateHash());
});
