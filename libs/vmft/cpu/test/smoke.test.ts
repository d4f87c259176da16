import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble, Cpu } from '../src/index.ts';

test('a sieve counts the primes below 10000 and halts', () => {
  const cpu = new Cpu(assemble(`
.equ N, 10000
.data
flags: .space N
.text
start:
    mov r4, 2
    mov r5, 0
outer:
    bge r4, N, done
    ldb r6, [r4 + flags]
    bne r6, 0, next
    add r5, r5, 1
    mul r7, r4, r4
    bgeu r7, N, next
inner:
    stb r4, [r7 + flags]
    add r7, r7, r4
    blt r7, N, inner
next:
    add r4, r4, 1
    jmp outer
done:
    halt
`, 'sieve.s'));
  assert.equal(cpu.run(1e9), 'halt');
  assert.equal(cpu.regs[5], 1229);
});
