/**
 * A block compiler for hot guest code (QEMU-style translation blocks): a
 * straight run of instructions from one entry pc, up to and including the
 * first control transfer, becomes one JavaScript function. Pure and
 * deterministic (new Function over the program's own code words).
 *
 * A block runs whole or not at all: the caller runs it only when at least
 * `len` instructions are left in the slice, so an event due at an exact
 * instruction count still lands there (the interpreter runs the rest of the
 * slice). An instruction that would fault is not executed: the block returns
 * -(k + 1) after executing its first k instructions, and the interpreter runs
 * instruction k itself (and faults with its message). Only instructions with
 * no device or interrupt effects are compiled (ALU, loads and stores,
 * branches, JMP, CALL, RET, PUSH, POP, NOP); any other ends the block before
 * it. Code is not in guest memory (Harvard), so a block never goes stale.
 *
 * The block's function: (R, M8, M16, M32, D, left, io) => the next pc (>= 0)
 * with io[0] = instructions executed, or -(pc + 1) of an instruction that
 * would fault (not executed; io[0] = instructions executed before it). The
 * caller calls it only with left >= len. A block that branches back to its
 * own start (a tight loop) loops inside the function while `left` allows a
 * whole further pass.
 */
import { OP, PAGE_SHIFT, SP } from './isa.ts';

export type BlockFn = (R: Int32Array, M8: Uint8Array, M16: Uint16Array, M32: Int32Array, D: Uint8Array, left: number, io: Int32Array) => number;

export interface Block {
  /** Instructions in the block (all of them run, or the block bails out before a faulting one). */
  readonly len: number;
  readonly fn: BlockFn;
}

/** Most instructions in one block. */
export const MAX_BLOCK_LEN = 64;

const ALU: Partial<Record<number, (a: number, b: number, c: number) => string>> = {
  [OP.MOV_R]: (a, b) => `R[${a}] = R[${b}];`,
  [OP.MOV_I]: (a, _b, c) => `R[${a}] = ${c};`,
  [OP.ADD_R]: (a, b, c) => `R[${a}] = (R[${b}] + R[${c}]) | 0;`,
  [OP.ADD_I]: (a, b, c) => `R[${a}] = (R[${b}] + ${c}) | 0;`,
  [OP.SUB_R]: (a, b, c) => `R[${a}] = (R[${b}] - R[${c}]) | 0;`,
  [OP.SUB_I]: (a, b, c) => `R[${a}] = (R[${b}] - ${c}) | 0;`,
  [OP.MUL_R]: (a, b, c) => `R[${a}] = Math.imul(R[${b}], R[${c}]);`,
  [OP.MUL_I]: (a, b, c) => `R[${a}] = Math.imul(R[${b}], ${c});`,
  [OP.AND_R]: (a, b, c) => `R[${a}] = R[${b}] & R[${c}];`,
  [OP.AND_I]: (a, b, c) => `R[${a}] = R[${b}] & ${c};`,
  [OP.OR_R]: (a, b, c) => `R[${a}] = R[${b}] | R[${c}];`,
  [OP.OR_I]: (a, b, c) => `R[${a}] = R[${b}] | ${c};`,
  [OP.XOR_R]: (a, b, c) => `R[${a}] = R[${b}] ^ R[${c}];`,
  [OP.XOR_I]: (a, b, c) => `R[${a}] = R[${b}] ^ ${c};`,
  [OP.SHL_R]: (a, b, c) => `R[${a}] = R[${b}] << R[${c}];`,
  [OP.SHL_I]: (a, b, c) => `R[${a}] = R[${b}] << ${c};`,
  [OP.SHR_R]: (a, b, c) => `R[${a}] = R[${b}] >>> R[${c}];`,
  [OP.SHR_I]: (a, b, c) => `R[${a}] = R[${b}] >>> ${c};`,
  [OP.SAR_R]: (a, b, c) => `R[${a}] = R[${b}] >> R[${c}];`,
  [OP.SAR_I]: (a, b, c) => `R[${a}] = R[${b}] >> ${c};`,
  [OP.SLT_R]: (a, b, c) => `R[${a}] = R[${b}] < R[${c}] ? 1 : 0;`,
  [OP.SLT_I]: (a, b, c) => `R[${a}] = R[${b}] < ${c} ? 1 : 0;`,
  [OP.SLTU_R]: (a, b, c) => `R[${a}] = R[${b}] >>> 0 < R[${c}] >>> 0 ? 1 : 0;`,
  [OP.SLTU_I]: (a, b, c) => `R[${a}] = R[${b}] >>> 0 < ${c >>> 0} ? 1 : 0;`,
  [OP.NOT]: (a, b) => `R[${a}] = ~R[${b}];`,
  [OP.NEG]: (a, b) => `R[${a}] = -R[${b}] | 0;`,
  [OP.NOP]: () => '',
};

/** Conditional branches: the condition on R[a] and R[b] (or the immediate b). */
const BRANCH: Partial<Record<number, (a: number, b: number) => string>> = {
  [OP.BEQ_R]: (a, b) => `R[${a}] === R[${b}]`,
  [OP.BEQ_I]: (a, b) => `R[${a}] === ${b}`,
  [OP.BNE_R]: (a, b) => `R[${a}] !== R[${b}]`,
  [OP.BNE_I]: (a, b) => `R[${a}] !== ${b}`,
  [OP.BLT_R]: (a, b) => `R[${a}] < R[${b}]`,
  [OP.BLT_I]: (a, b) => `R[${a}] < ${b}`,
  [OP.BGE_R]: (a, b) => `R[${a}] >= R[${b}]`,
  [OP.BGE_I]: (a, b) => `R[${a}] >= ${b}`,
  [OP.BGT_R]: (a, b) => `R[${a}] > R[${b}]`,
  [OP.BGT_I]: (a, b) => `R[${a}] > ${b}`,
  [OP.BLE_R]: (a, b) => `R[${a}] <= R[${b}]`,
  [OP.BLE_I]: (a, b) => `R[${a}] <= ${b}`,
  [OP.BLTU_R]: (a, b) => `R[${a}] >>> 0 < R[${b}] >>> 0`,
  [OP.BLTU_I]: (a, b) => `R[${a}] >>> 0 < ${b >>> 0}`,
  [OP.BGEU_R]: (a, b) => `R[${a}] >>> 0 >= R[${b}] >>> 0`,
  [OP.BGEU_I]: (a, b) => `R[${a}] >>> 0 >= ${b >>> 0}`,
};

/**
 * Compiles the block that starts at `start`, or returns undefined when its
 * first instruction is not compilable (the interpreter runs it).
 * `code`: four slots per instruction; `n`: instructions in the program.
 */
export function compileBlock(code: Int32Array, n: number, start: number, memorySize: number): Block | undefined {
  const max4 = memorySize - 4, max2 = memorySize - 2, max1 = memorySize - 1;
  /**
   * Leaving instruction k (executed) for `target`: back to the start is the
   * next pass while `left` allows a whole one; anywhere else leaves the block.
   */
  const jumpTo = (target: number, k: number): string =>
    target === start ? `n += ${k + 1}; if (left - n >= LEN) continue; io[0] = n; return ${start};` : `io[0] = n + ${k + 1}; return ${target};`;
  const lines: string[] = [];
  const visited = new Set<number>();
  let pc = start;
  let ended = false;
  while (!ended && pc < n && lines.length < MAX_BLOCK_LEN && !visited.has(pc)) {
    visited.add(pc);
    const o = pc << 2;
    const op = code[o]! & 0xff, a = code[o + 1]!, b = code[o + 2]!, c = code[o + 3]!;
    const k = lines.length;
    /** Where execution goes on after this instruction when the trace does not follow it. */
    let follow = pc + 1;
    const bail = `{ io[0] = n + ${k}; return ${-(pc + 1)}; }`;
    const next = pc + 1;
    let js: string | undefined;
    const alu = ALU[op];
    const br = BRANCH[op];
    if (alu) js = alu(a, b, c);
    else if (br) {
      // A side exit (or, back to the start, the next pass); the trace goes on with the fall-through.
      js = `if (${br(a, b)}) { ${jumpTo(c, k)} }`;
    } else {
      switch (op) {
        case OP.DIV_R: case OP.DIV_I: case OP.DIVU_R: case OP.DIVU_I:
        case OP.REM_R: case OP.REM_I: case OP.REMU_R: case OP.REMU_I: {
          const y = (op & 1) === 0 ? String(c) : `R[${c}]`;
          const expr =
            op === OP.DIV_R || op === OP.DIV_I ? `(x / y) | 0`
              : op === OP.DIVU_R || op === OP.DIVU_I ? `((x >>> 0) / (y >>> 0)) >>> 0`
                : op === OP.REM_R || op === OP.REM_I ? `x % y`
                  : `(x >>> 0) % (y >>> 0)`;
          js = `{ const x = R[${b}], y = ${y}; if (y === 0) ${bail} R[${a}] = ${expr}; }`;
          break;
        }
        case OP.LDW:
          js = `{ const ad = (R[${b}] + ${c}) | 0; if ((ad & 3) !== 0 || ad >>> 0 > ${max4}) ${bail} R[${a}] = M32[ad >>> 2]; }`;
          break;
        case OP.STW:
          js = `{ const ad = (R[${b}] + ${c}) | 0; if ((ad & 3) !== 0 || ad >>> 0 > ${max4}) ${bail} M32[ad >>> 2] = R[${a}]; D[ad >>> ${PAGE_SHIFT}] = 3; }`;
          break;
        case OP.LDB:
          js = `{ const ad = (R[${b}] + ${c}) | 0; if (ad >>> 0 > ${max1}) ${bail} R[${a}] = M8[ad]; }`;
          break;
        case OP.STB:
          js = `{ const ad = (R[${b}] + ${c}) | 0; if (ad >>> 0 > ${max1}) ${bail} M8[ad] = R[${a}]; D[ad >>> ${PAGE_SHIFT}] = 3; }`;
          break;
        case OP.LDH:
          js = `{ const ad = (R[${b}] + ${c}) | 0; if ((ad & 1) !== 0 || ad >>> 0 > ${max2}) ${bail} R[${a}] = M16[ad >>> 1]; }`;
          break;
        case OP.STH:
          js = `{ const ad = (R[${b}] + ${c}) | 0; if ((ad & 1) !== 0 || ad >>> 0 > ${max2}) ${bail} M16[ad >>> 1] = R[${a}]; D[ad >>> ${PAGE_SHIFT}] = 3; }`;
          break;
        case OP.PUSH:
          js = `{ const sp = (R[${SP}] - 4) | 0; if ((sp & 3) !== 0 || sp >>> 0 > ${max4}) ${bail} M32[sp >>> 2] = R[${a}]; D[sp >>> ${PAGE_SHIFT}] = 3; R[${SP}] = sp; }`;
          break;
        case OP.POP:
          js = `{ const sp = R[${SP}]; if ((sp & 3) !== 0 || sp >>> 0 > ${max4}) ${bail} R[${a}] = M32[sp >>> 2]; R[${SP}] = (sp + 4) | 0; }`;
          break;
        case OP.JMP:
          // The trace follows a jump to code it has not covered yet.
          if (c !== start && !visited.has(c)) {
            js = '';
            follow = c;
          } else {
            js = jumpTo(c, k);
            ended = true;
          }
          break;
        case OP.CALL:
          // The target is checked by validateProgram; the interpreter checks it again (never fails for a valid program).
          if (c >>> 0 >= n) break;
          js = `{ const sp = (R[${SP}] - 4) | 0; if ((sp & 3) !== 0 || sp >>> 0 > ${max4}) ${bail} M32[sp >>> 2] = ${next}; D[sp >>> ${PAGE_SHIFT}] = 3; R[${SP}] = sp; ${jumpTo(c, k)} }`;
          ended = true;
          break;
        case OP.RET:
          js = `{ const sp = R[${SP}]; if ((sp & 3) !== 0 || sp >>> 0 > ${max4}) ${bail} const t = M32[sp >>> 2]; if (t >>> 0 >= ${n}) ${bail} R[${SP}] = (sp + 4) | 0; io[0] = n + ${k + 1}; return t; }`;
          ended = true;
          break;
        default:
          break;
      }
    }
    if (js === undefined) break;
    lines.push(js);
    pc = follow;
  }
  if (lines.length === 0) return undefined;
  const len = lines.length;
  const body = `const LEN = ${len};\nlet n = 0;\nfor (;;) {\n${lines.join('\n')}\n${ended ? '' : `io[0] = n + LEN; return ${pc};`}\n}`;
  const fn = new Function('R', 'M8', 'M16', 'M32', 'D', 'left', 'io', `'use strict';\n${body}`) as BlockFn;
  return { len, fn };
}
