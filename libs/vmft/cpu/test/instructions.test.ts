import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { OP, PORT, DISK_STATUS, Cpu, fnv1a, type DeviceHost, type DiskRequest } from '../src/index.ts';
import { exec, prog, reg, seenOps } from './helpers.ts';

const alu: [string, number, number, number][] = [
  // mnemonic, x, y, expected (as int32)
  ['add', 7, 5, 12], ['add', 0x7fffffff, 1, -0x80000000],
  ['sub', 7, 9, -2], ['mul', -3, 7, -21], ['mul', 0x10000, 0x10000, 0],
  ['div', -7, 2, -3], ['divu', -8, 2, 0x7ffffffc], ['rem', -7, 2, -1], ['remu', -1, 10, 5],
  ['div', -0x80000000, -1, -0x80000000],
  ['and', 0b1100, 0b1010, 0b1000], ['or', 0b1100, 0b1010, 0b1110], ['xor', 0b1100, 0b1010, 0b0110],
  ['shl', 1, 33, 2], ['shr', -1, 28, 15], ['sar', -16, 2, -4],
  ['slt', -1, 1, 1], ['slt', 1, -1, 0], ['sltu', -1, 1, 0], ['sltu', 1, -1, 1],
];

test('ALU instructions, register and immediate forms', () => {
  for (const [mn, x, y, want] of alu) {
    const r = exec(`mov r1, ${x}\nmov r2, ${y}\n${mn} r3, r1, r2\n${mn} r4, r1, ${y}\nhalt`);
    assert.equal(r.faultMessage, null, mn);
    assert.equal(reg(r, 3), want, `${mn} ${x}, ${y} (register)`);
    assert.equal(reg(r, 4), want, `${mn} ${x}, ${y} (immediate)`);
  }
  const r = exec('mov r1, 5\nmov r2, r1\nnot r3, r1\nneg r4, r1\nnop\nhalt');
  assert.deepEqual([reg(r, 2), reg(r, 3), reg(r, 4)], [5, -6, -5]);
  assert.equal(r.icount, 6);
});

test('division by zero faults without completing the instruction', () => {
  for (const mn of ['div', 'divu', 'rem', 'remu']) {
    const r = exec(`mov r1, 1\n${mn} r2, r1, 0\nhalt`);
    assert.match(r.faultMessage!, /division by zero at pc=1 \(t\.s:2\) icount=1/);
    assert.equal(r.icount, 1);
    assert.equal(r.pc, 1);
    assert.equal(r.run(100), 'fault', 'a fault is sticky');
    const r2 = exec(`mov r1, 1\nmov r3, 0\n${mn} r2, r1, r3\nhalt`);
    assert.match(r2.faultMessage!, /division by zero/);
  }
});

test('loads and stores: word, halfword, byte; absolute and base+offset; faults on bad addresses', () => {
  const r = exec(`
.data
.align 4
w: .word 0x11223344, -2
h: .half 0xbeef
b: .byte 0xfe, 1
buf: .space 16
.text
    ldw r1, [w]
    mov r9, w
    ldw r2, [r9 + 4]
    ldh r3, [h]
    ldb r4, [b]
    ldb r5, [r9 + b - w + 1]
    mov r6, buf + 8
    stw r1, [r6 - 8]
    sth r3, [r6 - 4]
    stb r4, [r6]
    ldw r7, [buf]
    ldw r8, [buf + 4]
    ldw r10, [buf + 8]
    halt`);
  assert.equal(r.faultMessage, null);
  assert.deepEqual([1, 2, 3, 4, 5, 7, 8, 10].map((i) => reg(r, i)), [0x11223344, -2, 0xbeef, 0xfe, 1, 0x11223344, 0xbeef, 0xfe]);
  for (const bad of ['ldw r1, [r0 + 2]', 'stw r1, [r0 + 65536]', 'ldh r1, [r0 + 1]', 'sth r1, [r0 + 65535]', 'ldb r1, [r0 - 1]', 'stb r1, [r0 + 65536]', 'ldw r1, [r0 + 65534]']) {
    const f = exec(`mov r0, 0\n${bad}\nhalt`);
    assert.match(f.faultMessage ?? '', /bad (word|halfword|byte) (load|store) address/, bad);
    assert.equal(f.icount, 1, bad);
  }
});

test('branches: every condition, register and immediate forms, taken and not taken', () => {
  const cases: [string, number, number, boolean][] = [
    ['beq', 3, 3, true], ['beq', 3, 4, false], ['bne', 3, 4, true], ['bne', 3, 3, false],
    ['blt', -1, 0, true], ['blt', 0, 0, false], ['bge', 0, 0, true], ['bge', -1, 0, false],
    ['bgt', 1, 0, true], ['bgt', 0, 0, false], ['ble', 0, 0, true], ['ble', 1, 0, false],
    ['bltu', 0, -1, true], ['bltu', -1, 0, false], ['bgeu', -1, 0, true], ['bgeu', 0, -1, false],
  ];
  for (const [mn, x, y, taken] of cases) {
    for (const form of ['r2', String(y)]) {
      const r = exec(`mov r1, ${x}\nmov r2, ${y}\nmov r3, 0\n${mn} r1, ${form}, yes\nhalt\nyes:\nmov r3, 1\nhalt`);
      assert.equal(reg(r, 3), taken ? 1 : 0, `${mn} ${x}, ${form}`);
    }
  }
});

test('jumps, calls, returns and the stack', () => {
  const r = exec(`
start:
    mov r1, 0
    call f           ; r1 += 1
    mov r2, f
    callr r2         ; r1 += 1
    mov r3, there
    jr r3
    halt
there:
    push r1
    mov r1, 100
    pop r4
    jmp end
    halt
f:
    add r1, r1, 1
    ret
end:
    halt`);
  assert.equal(r.faultMessage, null);
  assert.equal(reg(r, 4), 2);
  assert.equal(reg(r, 1), 100);
  assert.equal(reg(r, 15), 65536, 'stack balanced');
  assert.match(exec('mov r1, 99\njr r1').faultMessage!, /jump to bad address 99/);
  assert.match(exec('mov r1, -1\ncallr r1').faultMessage!, /call to bad address -1/);
  assert.match(exec('ret').faultMessage!, /stack underflow/);
  assert.match(exec('mov sp, 2\npush r1').faultMessage!, /stack overflow/);
  assert.match(exec('mov r1, 1\npop r2').faultMessage!, /stack underflow/);
  assert.match(exec('loop:\ncall loop').faultMessage!, /stack overflow/);
  assert.match(exec('nop').faultMessage!, /ran off the end of the program at pc=1/);
});

test('block instructions: memcpy (overlapping), memset, memcmp, hash; bounds are checked', () => {
  const r = exec(`
.data
src: .ascii "abcdefgh"
dst: .space 16
.text
    mov r1, dst
    mov r2, src
    mov r3, 8
    memcpy r1, r2, r3
    add r4, r1, 2
    mov r5, 4
    memcpy r4, r1, r5       ; overlapping move: "ababcdgh"
    memcmp r6, r1, r2, r3   ; "ababcdgh" vs "abcdefgh" → -1
    memcmp r7, r2, r1, r3
    mov r8, 2
    memcmp r9, r1, r2, r8
    hash r10, r2, r3
    add r11, r1, 8
    mov r12, 'z'
    mov r13, 3
    memset r11, r12, r13
    halt`);
  assert.equal(r.faultMessage, null);
  assert.equal(new TextDecoder().decode(r.readMemory(8, 11)), 'ababcdghzzz');
  assert.deepEqual([reg(r, 6), reg(r, 7), reg(r, 9)], [-1, 1, 0]);
  assert.equal(reg(r, 10) >>> 0, fnv1a(new TextEncoder().encode('abcdefgh')));
  assert.match(exec('mov r1, 65530\nmov r2, 0\nmov r3, 10\nmemcpy r1, r2, r3').faultMessage!, /memcpy of 10 bytes/);
  assert.match(exec('mov r1, 65530\nmov r3, 10\nmemset r1, r2, r3').faultMessage!, /memset/);
  assert.match(exec('mov r1, 65530\nmov r3, 10\nmemcmp r4, r1, r2, r3').faultMessage!, /memcmp/);
  assert.match(exec('mov r1, -1\nmov r3, 10\nhash r4, r1, r3').faultMessage!, /hash/);
});

test('device ports: clock, random, host ports, console, NIC transmit, disk commands', () => {
  const reads: [number, number][] = [];
  const writes: [number, number, number][] = [];
  const sent: [Uint8Array, number][] = [];
  const disks: [DiskRequest, number][] = [];
  const host: DeviceHost = {
    read: (port, icount) => { reads.push([port, icount]); return port === PORT.CLOCK ? 0x1_2345_6789 : port === PORT.RANDOM ? 0xdeadbeef : 42; },
    write: (port, value, icount) => { writes.push([port, value, icount]); },
    transmit: (p, icount) => { sent.push([p, icount]); },
    disk: (req, icount) => { disks.push([req, icount]); },
  };
  const r = exec(`
.data
msg: .ascii "hi!"
.align 4
blk: .space 1024
.text
    in r1, PORT_CLOCK
    in r2, PORT_CLOCK_HI
    in r3, PORT_RANDOM
    in r4, 0x90
    out 0x91, r4
    out PORT_CONSOLE, 'A'
    mov r5, msg
    out PORT_NIC_TX_ADDR, r5
    out PORT_NIC_TX_LEN, 3
    mov r5, blk
    out PORT_DISK_ADDR, r5
    out PORT_DISK_BLOCK, 7
    out PORT_DISK_COUNT, 2
    out PORT_DISK_CMD, DISK_WRITE
    in r6, PORT_DISK_STATUS
    out PORT_DISK_CMD, DISK_READ
    in r7, PORT_DISK_STATUS
    out PORT_DISK_CMD, DISK_READ   ; a second read while one is in flight is an error
    in r8, PORT_DISK_STATUS
    out PORT_TIMER_PERIOD, 25
    in r9, PORT_TIMER_PERIOD
    halt`, host);
  assert.equal(r.faultMessage, null);
  assert.equal(reg(r, 1), 0x2345_6789);
  assert.equal(reg(r, 2), 1);
  assert.equal(reg(r, 3) >>> 0, 0xdeadbeef);
  assert.equal(reg(r, 4), 42);
  assert.deepEqual(reads, [[PORT.CLOCK, 0], [PORT.RANDOM, 2], [0x90, 3]], 'the clock high word is latched, not read again');
  assert.deepEqual(writes, [[0x91, 42, 4], [PORT.CONSOLE, 65, 5], [PORT.TIMER_PERIOD, 25, 19]]);
  assert.deepEqual(sent.map(([p, ic]) => [new TextDecoder().decode(p), ic]), [['hi!', 8]]);
  assert.deepEqual(disks.map(([d, ic]) => [d.op, d.block, d.count, d.addr, d.data?.length, ic]), [['write', 7, 2, 4, 1024, 13], ['read', 7, 2, 4, undefined, 15]]);
  assert.deepEqual([reg(r, 6), reg(r, 7), reg(r, 8)], [DISK_STATUS.DONE, DISK_STATUS.BUSY, DISK_STATUS.ERROR]);
  assert.equal(reg(r, 9), 25);
  assert.equal(r.timerPeriodMs, 25);
});

test('a host read that is not available yet stops before the IN, which runs again later', () => {
  let value: number | undefined = undefined;
  const host: DeviceHost = { read: () => value, transmit: () => {}, disk: () => {} };
  const cpu = new Cpu(prog('mov r1, 1\nin r2, PORT_RANDOM\nhalt'), host, { memorySize: 4096 });
  assert.equal(cpu.run(100), 'io-wait');
  assert.deepEqual([cpu.icount, cpu.pc], [1, 1]);
  value = 9;
  assert.equal(cpu.run(100), 'halt');
  assert.deepEqual([cpu.icount, reg(cpu, 2)], [3, 9]);
});

test('requestStop from a callback ends run() after that instruction', () => {
  const ref: { cpu?: Cpu } = {};
  const host: DeviceHost = { read: () => 0, transmit: () => ref.cpu!.requestStop(), disk: () => {} };
  const cpu = ref.cpu = new Cpu(prog('out PORT_NIC_TX_LEN, 0\nnop\nhalt'), host, { memorySize: 4096 });
  assert.equal(cpu.run(100), 'stop');
  assert.equal(cpu.icount, 1);
  assert.equal(cpu.run(100), 'halt');
});

test('events cannot be delivered from inside a device callback', () => {
  const ref: { cpu?: Cpu } = {};
  let err: unknown;
  const host: DeviceHost = { read: () => { try { ref.cpu!.raiseInterrupt(0); } catch (e) { err = e; } return 0; }, transmit: () => {}, disk: () => {} };
  const cpu = ref.cpu = new Cpu(prog('in r1, PORT_RANDOM\nhalt'), host, { memorySize: 4096 });
  assert.equal(cpu.run(10), 'halt');
  assert.equal((err as { code?: string }).code, 'FT_ERR_BAD_EVENT');
  assert.equal(cpu.irqPending, 0);
});

test('bad programs are refused when the CPU is built', () => {
  const p = prog('halt');
  const bad = (code: number[]) => ({ ...p, code: Int32Array.from(code) });
  assert.throws(() => new Cpu(bad([OP.JMP, 0, 0, 5])), { code: 'FT_ERR_BAD_PROGRAM' });
  assert.throws(() => new Cpu(bad([OP.MOV_I, 16, 0, 5])), { code: 'FT_ERR_BAD_PROGRAM' });
  assert.throws(() => new Cpu(bad([200, 0, 0, 0])), { code: 'FT_ERR_BAD_PROGRAM' });
  assert.throws(() => new Cpu(bad([OP.ADD_R, 1, 2, 40])), { code: 'FT_ERR_BAD_PROGRAM' });
  assert.throws(() => new Cpu(p, undefined, { memorySize: 1000 }), { code: 'FT_ERR_BAD_PROGRAM' });
});

after(() => {
  // Every opcode but the FAULT sentinel appears in some program above (the
  // interrupt instructions EI, DI, IRET, WFI in interrupts.test.ts, which checks them).
  const elsewhere = new Set(['FAULT', 'EI', 'DI', 'IRET', 'WFI']);
  const missing = Object.entries(OP).filter(([name, code]) => !elsewhere.has(name) && !seenOps.has(code)).map(([n]) => n);
  if (missing.length > 0) throw new Error(`instructions not covered: ${missing.join(', ')}`);
});
