import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OP } from '../src/isa.ts';
import { STATE, STATE_WORDS, stateIndex } from '../src/state.ts';
import { Cpu } from '../src/index.ts';
import { prog } from './helpers.ts';

test('every `case N: /* NAME */` label in the interpreter names opcode N', () => {
  const src = readFileSync(new URL('../src/cpu.ts', import.meta.url), 'utf8');
  const labels = [...src.matchAll(/case (\d+): \/\* ([A-Z_]+) \*\//g)];
  assert.ok(labels.length >= 70, `found only ${labels.length} labels`);
  const ops: Record<string, number> = OP;
  for (const [, n, name] of labels) assert.equal(ops[name!], Number(n), `case ${n} is labelled ${name}`);
  const covered = new Set(labels.map(([, n]) => Number(n)));
  for (const [name, n] of Object.entries(OP)) if (name !== 'FAULT') assert.ok(covered.has(n), `${name} has no case`);
});

test('the state layout names each word once and a snapshot round-trips through it', () => {
  assert.equal(new Set(STATE).size, STATE_WORDS);
  const cpu = new Cpu(prog('start:\n mov r1, 7\n mov r14, -3\n out PORT_TIMER_PERIOD, 5\n out PORT_NIC_RX_ADDR, r14\n wfi\n halt'), undefined, { memorySize: 65536 });
  cpu.run(100);
  const copy = new Cpu(cpu.program, undefined, { memorySize: 65536 });
  copy.restore(cpu.snapshot());
  assert.equal(copy.stateHash(), cpu.stateHash());
  assert.equal(copy.nicRxAddr, 0xfffffffd);
  assert.equal(copy.timerPeriodMs, 5);
  assert.equal(copy.waiting, true);
});

test('a snapshot whose instruction count a double cannot step one by one (>= 2^53) is refused, and nothing changes', () => {
  const cpu = new Cpu(prog('start:\n add r1, r1, 1\n jmp start'), undefined, { memorySize: 65536 });
  cpu.run(10);
  const snap = cpu.snapshot();
  const at = 24 + cpu.program.id.length + 4 * stateIndex('icountHi');
  const bad = snap.slice();
  new DataView(bad.buffer).setInt32(at, 0x200000, true); // icount = 2^53 + 10
  const before = cpu.stateHash();
  assert.throws(() => cpu.restore(bad), { code: 'FT_ERR_BAD_SNAPSHOT' });
  assert.equal(cpu.stateHash(), before);
});
