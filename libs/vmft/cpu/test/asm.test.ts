import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assemble, Cpu, OP, type AsmError } from '../src/index.ts';

function asmError(src: string, file = 'kv.s'): AsmError {
  try {
    assemble(src, file);
  } catch (e) {
    return e as AsmError;
  }
  assert.fail(`expected an error for ${JSON.stringify(src)}`);
}

test('errors name file:line:column', () => {
  const cases: [string, string][] = [
    ['start:\n  mov r1, 1\n      ldx r1, [r2]', 'kv.s:3:7: unknown instruction "ldx"'],
    ['  add r1, r2', 'kv.s:1:3: "add" takes 3 operands, got 2'],
    ['  add r1, r2, r3, r4', 'kv.s:1:19: "add" takes 3 operands, got 4'],
    ['  jmp nowhere', 'kv.s:1:7: undefined symbol "nowhere"'],
    ['a:\na:\n halt', 'kv.s:2:1: "a" is already defined on line 1'],
    [' mov r1, 0x', 'kv.s:1:10: bad number "0x"'],
    [' mov r1, "str"', 'kv.s:1:10: a string is not allowed here'],
    [' ldw r1, r2', 'kv.s:1:10: expected a memory operand like [r1 + 4]'],
    [' ldw r1, [r2 + 4', 'kv.s:1:17: expected "]" to close the memory operand'],
    [' mov 5, r1', 'kv.s:1:6: expected a register'],
    [' mov r16, 1', 'kv.s:1:6: expected a register'],
    [' .word 1\n halt', 'kv.s:1:2: .word belongs in the .data section'],
    ['.data\n .string abc\n.text\n halt', 'kv.s:2:10: expected a "string" after .string'],
    ['.data\n .ascii "abc\n.text\n halt', 'kv.s:2:9: unterminated string'],
    [' .bogus', 'kv.s:1:2: unknown directive ".bogus"'],
    [' mov r1, 1 / 0\n halt', 'kv.s:1:12: division by zero in expression'],
    ['.equ A, B\n.equ B, A\n mov r1, A', 'kv.s:2:9: symbol "A" is defined in terms of itself'],
    [' in r1, 300', 'kv.s:1:9: port 300 is not in 0..255'],
    [' mov r1, 0x1_0000_0000', 'kv.s:1:10: value 4294967296 does not fit in 32 bits'],
    [' beq r1, 2, 7', 'kv.s:1:13: branch target 7 is not an instruction'],
    ['\n\n; only comments', 'kv.s:1:1: program has no instructions'],
    [' mov r1, @', 'kv.s:1:10: unexpected character "@"'],
    [".data\n .space -1\n.text\n halt", 'kv.s:2:9: size must not be negative'],
    [".data\n .align 3\n.text\n halt", 'kv.s:2:9: alignment must be a power of two up to 65536'],
    [".data\n .byte 256\n.text\n halt", 'kv.s:2:8: value 256 does not fit in a byte'],
    [" mov r1, 'ab'", "kv.s:1:10: a character literal must be exactly one byte"],
    [" mov r1, (1 + 2", 'kv.s:1:16: expected ")" to close "("'],
    ['.equ r3, 4\n halt', 'kv.s:1:6: "r3" is a register name'],
    ['.equ PORT_CLOCK, 4\n halt', 'kv.s:1:6: "PORT_CLOCK" is a predefined name'],
  ];
  for (const [src, msg] of cases) {
    const e = asmError(src);
    assert.equal(e.code, 'FT_ERR_ASM', src);
    assert.equal(e.message, msg, src);
    const m = /^kv\.s:(\d+):(\d+): /.exec(msg)!;
    assert.deepEqual([e.line, e.column], [Number(m[1]), Number(m[2])]);
  }
});

test('labels, constants, expressions and data directives', () => {
  const p = assemble(`
; a comment
# another comment
.equ SIZE, (4 + 4) * 2      ; 16
.equ MASK, ~0 & 0xff
.equ FWD, later + 1         ; forward reference to a label
.data
.align 4
table: .word 1, -1, SIZE, table, 0b101
half:  .half 0xabcd, -1
str:   .string "a\\tb\\n\\x41\\"\\0"
raw:   .ascii "ü"
pad:   .space 3, 0x7f
.align 8
end:
.text
start:  mov r1, SIZE << 2 | 1
        mov r2, MASK
        mov r3, 'A' + 1
        mov r4, end - table
        mov r5, FWD
later:  halt
        ldw r1, [r2 + SIZE - 4]`, 'x.s');
  assert.equal(p.entry, 0);
  assert.equal(p.symbols['SIZE'], 16);
  assert.equal(p.symbols['later'], 5);
  assert.equal(p.symbols['FWD'], 6);
  const dv = new DataView(p.data.buffer);
  assert.deepEqual([0, 4, 8, 12, 16].map((o) => dv.getInt32(o, true)), [1, -1, 16, 0, 5]);
  assert.deepEqual([dv.getUint16(20, true), dv.getUint16(22, true)], [0xabcd, 0xffff]);
  assert.deepEqual([...p.data.subarray(24, 24 + 8)], [97, 9, 98, 10, 65, 34, 0, 0]);
  assert.deepEqual([...p.data.subarray(32, 34)], [0xc3, 0xbc]);
  assert.deepEqual([...p.data.subarray(34, 37)], [0x7f, 0x7f, 0x7f]);
  assert.equal(p.symbols['end'], 40);
  const cpu = new Cpu(p, undefined, { memorySize: 4096 });
  assert.equal(cpu.run(100), 'halt');
  assert.deepEqual([...cpu.regs.subarray(1, 6)], [65, 255, 66, 40, 6]);
  assert.equal(p.code[6 * 4], OP.LDW);
  assert.equal(p.code[6 * 4 + 3], 12);
  assert.equal(assemble('nop\nstart: halt').entry, 1, 'execution starts at `start`');
  assert.notEqual(assemble('nop\nhalt').id, assemble('nop\nnop\nhalt').id);
});

test('arbitrary text never crashes the assembler: a program or a clear FT_ERR_ASM error', () => {
  const check = (src: string): void => {
    try {
      const p = assemble(src, 'fuzz.s');
      assert.ok(p.code.length >= 4);
      new Cpu(p, undefined, { memorySize: Math.max(4096, Math.ceil((p.data.length + 1) / 4096) * 4096) }).run(1000);
    } catch (e) {
      const err = e as AsmError;
      assert.equal(err.code, 'FT_ERR_ASM', String(err.stack));
      assert.match(err.message, /^fuzz\.s:\d+:\d+: \S/);
    }
  };
  fc.assert(fc.property(fc.string({ maxLength: 200 }), check), { numRuns: 500 });
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 100 }), check), { numRuns: 300 });
  // Token soup: likely to get deep into the parser.
  const tok = fc.constantFrom('mov', 'add', 'ldw', 'stb', 'beq', 'jmp', 'call', 'ret', 'memcmp', 'out', 'in', 'halt', 'wfi',
    'r1', 'r15', 'sp', 'x', 'start', ':', ',', '[', ']', '+', '-', '*', '/', '%', '<<', '(', ')', '~', '0', '0x10', '7', "'a'",
    '"s"', '.data', '.text', '.word', '.byte', '.space', '.align', '.equ', '.string', ';', '\n', '\n', ' ');
  fc.assert(fc.property(fc.array(tok, { maxLength: 60 }), (ts) => check(ts.join(' '))), { numRuns: 1500 });
});
