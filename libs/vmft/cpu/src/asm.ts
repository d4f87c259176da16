/**
 * The assembler: text → pre-decoded Program. Two passes (layout, then
 * encoding). Every error names file:line:column and is thrown as a coded
 * error FT_ERR_ASM; no input makes it crash otherwise.
 *
 * Syntax (one statement per line, `;` or `#` starts a comment):
 *
 *   .equ NAME, expr          constant (expressions: + - * / % & | ^ ~ << >> ( ), numbers
 *                            in decimal, 0x hex, 0b binary, 'c' chars, and symbols)
 *   .text / .data            switch section (code first by default)
 *   label:                   code label = instruction index, data label = byte address
 *   .word e, ...   .half e, ...   .byte e, ...   .string "s" (NUL-terminated)
 *   .ascii "s"     .space n [, fill]      .align n
 *
 *   mov rd, rs|imm    add/sub/mul/div/divu/rem/remu/and/or/xor/shl/shr/sar/slt/sltu rd, rs, rt|imm
 *   not rd, rs        neg rd, rs
 *   ldw/ldh/ldb rd, [rs + off]    stw/sth/stb rs, [rd + off]    ([label], [r1], [r1 - 4])
 *   beq/bne/blt/bge/bgt/ble/bltu/bgeu rs, rt|imm, label
 *   jmp label   jr rs   call label   callr rs   ret   push rs   pop rd
 *   ei  di  iret  wfi  halt  nop
 *   in rd, PORT       out PORT, rs|imm
 *   memcpy rdst, rsrc, rlen   memset rdst, rbyte, rlen   memcmp rres, ra, rb, rlen   hash rres, raddr, rlen
 *
 * Registers r0..r15; `sp` is r15 (initialised to the top of memory). The
 * device constants (PORT_*, IRQ_*, DISK_*) are predefined.
 */
import { createError } from '@mr/errors';
import { DISK_BLOCK_SIZE, DISK_CMD, DISK_STATUS, IRQ, OP, PORT, SP, ZR } from './isa.ts';
import { programId, type Program } from './program.ts';

export const ErrAsm = createError<[string]>('FT_ERR_ASM', '%s', 400);

export interface AsmError extends Error {
  code: 'FT_ERR_ASM';
  file: string;
  line: number;
  column: number;
}

class Fail {
  constructor(readonly line: number, readonly col: number, readonly msg: string) {}
}

type Tok =
  | { t: 'id'; v: string; col: number }
  | { t: 'num'; v: number; col: number }
  | { t: 'str'; v: Uint8Array; col: number }
  | { t: 'p'; v: string; col: number };

type Expr =
  | { k: 'n'; v: number }
  | { k: 's'; name: string; col: number }
  | { k: 'u'; op: string; e: Expr }
  | { k: 'b'; op: string; l: Expr; r: Expr; col: number };

type Operand =
  | { k: 'reg'; r: number; col: number }
  | { k: 'imm'; e: Expr; col: number }
  | { k: 'mem'; base: number; off: Expr; col: number };

const PREDEFINED: Record<string, number> = {
  DISK_BLOCK_SIZE,
  DISK_READ: DISK_CMD.READ,
  DISK_WRITE: DISK_CMD.WRITE,
  DISK_IDLE: DISK_STATUS.IDLE,
  DISK_BUSY: DISK_STATUS.BUSY,
  DISK_DONE: DISK_STATUS.DONE,
  DISK_ERROR: DISK_STATUS.ERROR,
  IRQ_TIMER: IRQ.TIMER,
  IRQ_NIC: IRQ.NIC,
  IRQ_DISK: IRQ.DISK,
};
for (const [k, v] of Object.entries(PORT)) PREDEFINED[`PORT_${k}`] = v;

const ALU: Record<string, [number, number]> = {
  add: [OP.ADD_R, OP.ADD_I], sub: [OP.SUB_R, OP.SUB_I], mul: [OP.MUL_R, OP.MUL_I],
  div: [OP.DIV_R, OP.DIV_I], divu: [OP.DIVU_R, OP.DIVU_I], rem: [OP.REM_R, OP.REM_I], remu: [OP.REMU_R, OP.REMU_I],
  and: [OP.AND_R, OP.AND_I], or: [OP.OR_R, OP.OR_I], xor: [OP.XOR_R, OP.XOR_I],
  shl: [OP.SHL_R, OP.SHL_I], shr: [OP.SHR_R, OP.SHR_I], sar: [OP.SAR_R, OP.SAR_I],
  slt: [OP.SLT_R, OP.SLT_I], sltu: [OP.SLTU_R, OP.SLTU_I],
};
const BRANCH: Record<string, [number, number]> = {
  beq: [OP.BEQ_R, OP.BEQ_I], bne: [OP.BNE_R, OP.BNE_I], blt: [OP.BLT_R, OP.BLT_I], bge: [OP.BGE_R, OP.BGE_I],
  bgt: [OP.BGT_R, OP.BGT_I], ble: [OP.BLE_R, OP.BLE_I], bltu: [OP.BLTU_R, OP.BLTU_I], bgeu: [OP.BGEU_R, OP.BGEU_I],
};
const LOADSTORE: Record<string, number> = { ldw: OP.LDW, ldh: OP.LDH, ldb: OP.LDB, stw: OP.STW, sth: OP.STH, stb: OP.STB };
const NOARG: Record<string, number> = { ret: OP.RET, ei: OP.EI, di: OP.DI, iret: OP.IRET, wfi: OP.WFI, halt: OP.HALT, nop: OP.NOP };
const MNEMONICS = new Set([
  ...Object.keys(ALU), ...Object.keys(BRANCH), ...Object.keys(LOADSTORE), ...Object.keys(NOARG),
  'mov', 'li', 'not', 'neg', 'jmp', 'jr', 'call', 'callr', 'push', 'pop', 'in', 'out', 'memcpy', 'memset', 'memcmp', 'hash',
]);

const MAX_DATA = 1 << 30;

function tokenize(text: string, line: number): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i]!;
    const col = i + 1;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\f' || ch === '\v') { i++; continue; }
    if (ch === ';' || ch === '#') break;
    if (/[A-Za-z_.$]/.test(ch)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_.$]/.test(text[j]!)) j++;
      toks.push({ t: 'id', v: text.slice(i, j), col });
      i = j;
      continue;
    }
    if (/[0-9]/.test(ch)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      const s = text.slice(i, j).replace(/_/g, '');
      let v: number;
      if (/^0x[0-9a-f]+$/i.test(s)) v = parseInt(s.slice(2), 16);
      else if (/^0b[01]+$/i.test(s)) v = parseInt(s.slice(2), 2);
      else if (/^[0-9]+$/.test(s)) v = parseInt(s, 10);
      else throw new Fail(line, col, `bad number "${text.slice(i, j)}"`);
      if (!Number.isSafeInteger(v)) throw new Fail(line, col, `number "${text.slice(i, j)}" is too large`);
      toks.push({ t: 'num', v, col });
      i = j;
      continue;
    }
    if (ch === '"' || ch === "'") {
      const bytes: number[] = [];
      let j = i + 1;
      let closed = false;
      while (j < n) {
        const c = text[j]!;
        if (c === ch) { closed = true; j++; break; }
        if (c === '\\') {
          const e = text[j + 1];
          if (e === undefined) break;
          const simple: Record<string, number> = { n: 10, t: 9, r: 13, '0': 0, '\\': 92, '"': 34, "'": 39 };
          if (e in simple) { bytes.push(simple[e]!); j += 2; continue; }
          if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(j + 2, j + 4))) { bytes.push(parseInt(text.slice(j + 2, j + 4), 16)); j += 4; continue; }
          throw new Fail(line, j + 1, `unknown escape "\\${e}"`);
        }
        const cp = text.codePointAt(j)!;
        const enc = new TextEncoder().encode(String.fromCodePoint(cp));
        for (const b of enc) bytes.push(b);
        j += cp > 0xffff ? 2 : 1;
      }
      if (!closed) throw new Fail(line, col, `unterminated ${ch === '"' ? 'string' : 'character'}`);
      if (ch === "'") {
        if (bytes.length !== 1) throw new Fail(line, col, 'a character literal must be exactly one byte');
        toks.push({ t: 'num', v: bytes[0]!, col });
      } else {
        toks.push({ t: 'str', v: Uint8Array.from(bytes), col });
      }
      i = j;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '<<' || two === '>>') { toks.push({ t: 'p', v: two, col }); i += 2; continue; }
    if ('[]+-*/%&|^~(),:='.includes(ch)) { toks.push({ t: 'p', v: ch, col }); i++; continue; }
    throw new Fail(line, col, `unexpected character "${ch}"`);
  }
  return toks;
}

function regNum(name: string): number {
  const l = name.toLowerCase();
  if (l === 'sp') return SP;
  const m = /^r([0-9]|1[0-5])$/.exec(l);
  return m ? Number(m[1]) : -1;
}

interface Sym { value?: number; expr?: Expr; line: number; col: number; resolving?: boolean }

/** Assembles `source`; `file` names it in error messages. Throws an AsmError. */
export function assemble(source: string, file = 'input.s'): Program {
  try {
    return assembleInner(String(source), file);
  } catch (e) {
    if (e instanceof Fail) {
      const err = ErrAsm(`${file}:${e.line}:${e.col}: ${e.msg}`) as unknown as AsmError;
      err.file = file;
      err.line = e.line;
      err.column = e.col;
      throw err;
    }
    throw e;
  }
}

function assembleInner(source: string, file: string): Program {
  const lines = source.split('\n');
  const syms = new Map<string, Sym>();
  for (const [k, v] of Object.entries(PREDEFINED)) syms.set(k, { value: v, line: 0, col: 0 });

  let line = 0;
  const evalExpr = (e: Expr, lineNo: number): number => {
    switch (e.k) {
      case 'n': return e.v;
      case 's': {
        const s = syms.get(e.name);
        if (!s) throw new Fail(lineNo, e.col, `undefined symbol "${e.name}"`);
        if (s.value !== undefined) return s.value;
        if (s.resolving) throw new Fail(lineNo, e.col, `symbol "${e.name}" is defined in terms of itself`);
        s.resolving = true;
        const v = evalExpr(s.expr!, s.line);
        s.resolving = false;
        s.value = v;
        return v;
      }
      case 'u': {
        const v = evalExpr(e.e, lineNo);
        return e.op === '-' ? -v : e.op === '~' ? ~v : v;
      }
      case 'b': {
        const l = evalExpr(e.l, lineNo), r = evalExpr(e.r, lineNo);
        let v: number;
        switch (e.op) {
          case '+': v = l + r; break;
          case '-': v = l - r; break;
          case '*': v = l * r; break;
          case '/': if (r === 0) throw new Fail(lineNo, e.col, 'division by zero in expression'); v = Math.trunc(l / r); break;
          case '%': if (r === 0) throw new Fail(lineNo, e.col, 'division by zero in expression'); v = l % r; break;
          case '&': v = l & r; break;
          case '|': v = l | r; break;
          case '^': v = l ^ r; break;
          case '<<': v = l << r; break;
          default: v = l >> r; break;
        }
        if (!Number.isSafeInteger(v)) throw new Fail(lineNo, e.col, 'expression overflows');
        return v;
      }
    }
  };

  // Parser over one line's tokens.
  let toks: Tok[] = [];
  let pos = 0;
  let lineLen = 0;
  const endCol = (): number => (toks[pos] ? toks[pos]!.col : lineLen + 1);
  const isP = (v: string): boolean => { const t = toks[pos]; return t !== undefined && t.t === 'p' && t.v === v; };
  const expectP = (v: string, what: string): void => {
    if (!isP(v)) throw new Fail(line, endCol(), `expected "${v}" ${what}`);
    pos++;
  };
  const BIN: Record<string, number> = { '|': 1, '^': 2, '&': 3, '<<': 4, '>>': 4, '+': 5, '-': 5, '*': 6, '/': 6, '%': 6 };
  const primary = (): Expr => {
    const t = toks[pos];
    if (!t) throw new Fail(line, endCol(), 'expected an expression');
    if (t.t === 'num') { pos++; return { k: 'n', v: t.v }; }
    if (t.t === 'id') {
      if (regNum(t.v) >= 0) throw new Fail(line, t.col, `register "${t.v}" is not allowed here`);
      pos++;
      return { k: 's', name: t.v, col: t.col };
    }
    if (t.t === 'p' && (t.v === '-' || t.v === '~' || t.v === '+')) { pos++; return { k: 'u', op: t.v, e: primary() }; }
    if (t.t === 'p' && t.v === '(') {
      pos++;
      const e = expr(0);
      expectP(')', 'to close "("');
      return e;
    }
    throw new Fail(line, t.col, t.t === 'str' ? 'a string is not allowed here' : `unexpected "${t.v}"`);
  };
  const expr = (minPrec: number, depth = 0): Expr => {
    if (depth > 100) throw new Fail(line, endCol(), 'expression too deep');
    let l = primary();
    for (;;) {
      const t = toks[pos];
      if (!t || t.t !== 'p' || !(t.v in BIN)) return l;
      const prec = BIN[t.v]!;
      if (prec <= minPrec) return l;
      pos++;
      const r = expr(prec, depth + 1);
      l = { k: 'b', op: t.v, l, r, col: t.col };
    }
  };
  const operand = (): Operand => {
    const t = toks[pos];
    if (!t) throw new Fail(line, endCol(), 'expected an operand');
    if (t.t === 'id' && regNum(t.v) >= 0) { pos++; return { k: 'reg', r: regNum(t.v), col: t.col }; }
    if (t.t === 'p' && t.v === '[') {
      pos++;
      let base = ZR;
      let off: Expr = { k: 'n', v: 0 };
      const r = toks[pos];
      if (r && r.t === 'id' && regNum(r.v) >= 0) {
        base = regNum(r.v);
        pos++;
        if (isP('+')) { pos++; off = expr(0); }
        else if (isP('-')) off = expr(0); // unary minus binds to the first term: [r1 - 4 + 2] = r1 - 2
      } else {
        off = expr(0);
      }
      expectP(']', 'to close the memory operand');
      return { k: 'mem', base, off, col: t.col };
    }
    return { k: 'imm', e: expr(0), col: t.col };
  };
  const operands = (): Operand[] => {
    const out: Operand[] = [];
    if (pos >= toks.length) return out;
    out.push(operand());
    while (pos < toks.length) {
      expectP(',', 'between operands');
      out.push(operand());
    }
    return out;
  };

  interface Ins { mn: string; ops: Operand[]; line: number; col: number }
  interface DataItem { kind: 'word' | 'half' | 'byte'; e: Expr; addr: number; line: number; col: number }
  const instrs: Ins[] = [];
  const dataItems: DataItem[] = [];
  const dataBytes: { addr: number; bytes: Uint8Array }[] = [];
  let dataSize = 0;
  let section: 'text' | 'data' = 'text';

  const define = (name: string, s: Sym): void => {
    const old = syms.get(name);
    if (old) throw new Fail(s.line, s.col, old.line === 0 ? `"${name}" is a predefined name` : `"${name}" is already defined on line ${old.line}`);
    if (regNum(name) >= 0) throw new Fail(s.line, s.col, `"${name}" is a register name`);
    syms.set(name, s);
  };
  const constArg = (what: string): number => {
    const col = endCol();
    const v = evalExpr(expr(0), line);
    if (!Number.isSafeInteger(v)) throw new Fail(line, col, `${what} must be an integer`);
    return v;
  };
  const grow = (n: number, col: number): number => {
    const at = dataSize;
    if (n < 0 || dataSize + n > MAX_DATA) throw new Fail(line, col, 'data section too large');
    dataSize += n;
    return at;
  };

  // Pass 1: parse, lay out, define labels.
  for (let li = 0; li < lines.length; li++) {
    line = li + 1;
    const text = lines[li]!;
    lineLen = text.length;
    toks = tokenize(text, line);
    pos = 0;
    // Labels (several may precede a statement).
    while (toks.length - pos >= 2 && toks[pos]!.t === 'id' && toks[pos + 1]!.t === 'p' && (toks[pos + 1] as { v: string }).v === ':') {
      const t = toks[pos] as { v: string; col: number };
      if (t.v.startsWith('.')) throw new Fail(line, t.col, `bad label name "${t.v}"`);
      define(t.v, { value: section === 'text' ? instrs.length : dataSize, line, col: t.col });
      pos += 2;
    }
    const head = toks[pos];
    if (!head) continue;
    if (head.t !== 'id') throw new Fail(line, head.col, `expected an instruction, directive or label, found "${head.t === 'str' ? 'string' : head.v}"`);
    pos++;
    const name = head.v;
    if (name.startsWith('.')) {
      const d = name.toLowerCase();
      switch (d) {
        case '.text': section = 'text'; break;
        case '.data': section = 'data'; break;
        case '.equ': case '.set': {
          const n = toks[pos];
          if (!n || n.t !== 'id' || n.v.startsWith('.')) throw new Fail(line, endCol(), 'expected a name after .equ');
          pos++;
          expectP(',', 'after the .equ name');
          const col = endCol();
          define(n.v, { expr: expr(0), line, col: n.col });
          if (pos < toks.length) throw new Fail(line, toks[pos]!.col, 'unexpected text after the expression');
          void col;
          break;
        }
        case '.word': case '.half': case '.byte': {
          if (section !== 'data') throw new Fail(line, head.col, `${d} belongs in the .data section`);
          const size = d === '.word' ? 4 : d === '.half' ? 2 : 1;
          if (size > 1) grow((size - (dataSize % size)) % size, head.col);
          do {
            const col = endCol();
            const e = expr(0);
            dataItems.push({ kind: d.slice(1) as DataItem['kind'], e, addr: grow(size, col), line, col });
            if (pos < toks.length) expectP(',', 'between values');
            else break;
          } while (true);
          break;
        }
        case '.string': case '.ascii': case '.asciz': {
          if (section !== 'data') throw new Fail(line, head.col, `${d} belongs in the .data section`);
          const s = toks[pos];
          if (!s || s.t !== 'str') throw new Fail(line, endCol(), `expected a "string" after ${d}`);
          pos++;
          const bytes = d === '.ascii' ? s.v : Uint8Array.from([...s.v, 0]);
          dataBytes.push({ addr: grow(bytes.length, s.col), bytes });
          break;
        }
        case '.space': case '.zero': {
          if (section !== 'data') throw new Fail(line, head.col, `${d} belongs in the .data section`);
          const col = endCol();
          const n = constArg('the size');
          let fill = 0;
          if (isP(',')) { pos++; fill = constArg('the fill byte') & 0xff; }
          if (n < 0) throw new Fail(line, col, 'size must not be negative');
          const at = grow(n, col);
          if (fill !== 0) dataBytes.push({ addr: at, bytes: new Uint8Array(n).fill(fill) });
          break;
        }
        case '.align': {
          if (section !== 'data') throw new Fail(line, head.col, '.align belongs in the .data section');
          const col = endCol();
          const n = constArg('the alignment');
          if (n <= 0 || n > 65536 || (n & (n - 1)) !== 0) throw new Fail(line, col, 'alignment must be a power of two up to 65536');
          grow((n - (dataSize % n)) % n, col);
          break;
        }
        default:
          throw new Fail(line, head.col, `unknown directive "${name}"`);
      }
      if (pos < toks.length) throw new Fail(line, toks[pos]!.col, 'unexpected text after the directive');
      continue;
    }
    const mn = name.toLowerCase();
    if (!MNEMONICS.has(mn)) throw new Fail(line, head.col, `unknown instruction "${name}"`);
    if (section !== 'text') throw new Fail(line, head.col, 'instructions belong in the .text section');
    instrs.push({ mn, ops: operands(), line, col: head.col });
  }

  if (instrs.length === 0) throw new Fail(1, 1, 'program has no instructions');

  // Pass 2: encode.
  const n = instrs.length;
  const code = new Int32Array(n * 4);
  const srcLines = new Int32Array(n);
  const val = (o: Operand, lineNo: number, what = 'value'): number => {
    if (o.k !== 'imm') throw new Fail(lineNo, o.col, `expected a ${what}`);
    const v = evalExpr(o.e, lineNo);
    if (v < -2147483648 || v > 4294967295) throw new Fail(lineNo, o.col, `${what} ${v} does not fit in 32 bits`);
    return v | 0;
  };
  const target = (o: Operand, lineNo: number): number => {
    const v = val(o, lineNo, 'code label');
    if (v < 0 || v >= n) throw new Fail(lineNo, o.col, `branch target ${v} is not an instruction`);
    return v;
  };
  const reg = (o: Operand | undefined, ins: Ins): number => {
    if (!o) throw new Fail(ins.line, ins.col, `"${ins.mn}" needs more operands`);
    if (o.k !== 'reg') throw new Fail(ins.line, o.col, 'expected a register');
    return o.r;
  };
  for (let i = 0; i < n; i++) {
    const ins = instrs[i]!;
    const { mn, ops } = ins;
    line = ins.line;
    srcLines[i] = ins.line;
    const arity = (k: number): void => {
      if (ops.length !== k) throw new Fail(ins.line, ops.length > k ? ops[k]!.col : ins.col, `"${mn}" takes ${k} operand${k === 1 ? '' : 's'}, got ${ops.length}`);
    };
    const emit = (op: number, a: number, b: number, c: number): void => {
      code[4 * i] = op; code[4 * i + 1] = a; code[4 * i + 2] = b; code[4 * i + 3] = c;
    };
    if (mn in ALU) {
      arity(3);
      const [r, im] = ALU[mn]!;
      const rd = reg(ops[0], ins), rs = reg(ops[1], ins);
      if (ops[2]!.k === 'reg') emit(r, rd, rs, ops[2]!.r);
      else emit(im, rd, rs, val(ops[2]!, ins.line));
    } else if (mn in BRANCH) {
      arity(3);
      const [r, im] = BRANCH[mn]!;
      const rs = reg(ops[0], ins);
      if (ops[1]!.k === 'reg') emit(r, rs, ops[1]!.r, target(ops[2]!, ins.line));
      else emit(im, rs, val(ops[1]!, ins.line), target(ops[2]!, ins.line));
    } else if (mn in LOADSTORE) {
      arity(2);
      const rd = reg(ops[0], ins);
      const m = ops[1]!;
      if (m.k !== 'mem') throw new Fail(ins.line, m.col, 'expected a memory operand like [r1 + 4]');
      const off = evalExpr(m.off, ins.line);
      if (off < -2147483648 || off > 4294967295) throw new Fail(ins.line, m.col, `offset ${off} does not fit in 32 bits`);
      emit(LOADSTORE[mn]!, rd, m.base, off | 0);
    } else if (mn in NOARG) {
      arity(0);
      emit(NOARG[mn]!, 0, 0, 0);
    } else {
      switch (mn) {
        case 'mov': case 'li': {
          arity(2);
          const rd = reg(ops[0], ins);
          if (ops[1]!.k === 'reg') emit(OP.MOV_R, rd, ops[1]!.r, 0);
          else emit(OP.MOV_I, rd, 0, val(ops[1]!, ins.line));
          break;
        }
        case 'not': case 'neg': arity(2); emit(mn === 'not' ? OP.NOT : OP.NEG, reg(ops[0], ins), reg(ops[1], ins), 0); break;
        case 'jmp': arity(1); emit(OP.JMP, 0, 0, target(ops[0]!, ins.line)); break;
        case 'call': arity(1); emit(OP.CALL, 0, 0, target(ops[0]!, ins.line)); break;
        case 'jr': arity(1); emit(OP.JR, reg(ops[0], ins), 0, 0); break;
        case 'callr': arity(1); emit(OP.CALLR, reg(ops[0], ins), 0, 0); break;
        case 'push': arity(1); emit(OP.PUSH, reg(ops[0], ins), 0, 0); break;
        case 'pop': arity(1); emit(OP.POP, reg(ops[0], ins), 0, 0); break;
        case 'in': {
          arity(2);
          const rd = reg(ops[0], ins);
          const p = val(ops[1]!, ins.line, 'port');
          if (p < 0 || p > 0xff) throw new Fail(ins.line, ops[1]!.col, `port ${p} is not in 0..255`);
          emit(OP.IN, rd, 0, p);
          break;
        }
        case 'out': {
          arity(2);
          const p = val(ops[0]!, ins.line, 'port');
          if (p < 0 || p > 0xff) throw new Fail(ins.line, ops[0]!.col, `port ${p} is not in 0..255`);
          if (ops[1]!.k === 'reg') emit(OP.OUT_R, ops[1]!.r, 0, p);
          else emit(OP.OUT_I, 0, val(ops[1]!, ins.line), p);
          break;
        }
        case 'memcpy': case 'memset': case 'hash':
          arity(3);
          emit(mn === 'memcpy' ? OP.MEMCPY : mn === 'memset' ? OP.MEMSET : OP.HASH, reg(ops[0], ins), reg(ops[1], ins), reg(ops[2], ins));
          break;
        case 'memcmp':
          arity(4);
          emit(OP.MEMCMP | (reg(ops[0], ins) << 8), reg(ops[1], ins), reg(ops[2], ins), reg(ops[3], ins));
          break;
        default:
          throw new Fail(ins.line, ins.col, `unknown instruction "${mn}"`);
      }
    }
  }

  const data = new Uint8Array(dataSize);
  const dv = new DataView(data.buffer);
  for (const b of dataBytes) data.set(b.bytes, b.addr);
  for (const it of dataItems) {
    const v = evalExpr(it.e, it.line);
    if (it.kind === 'word') {
      if (v < -2147483648 || v > 4294967295) throw new Fail(it.line, it.col, `value ${v} does not fit in 32 bits`);
      dv.setInt32(it.addr, v | 0, true);
    } else if (it.kind === 'half') {
      if (v < -32768 || v > 65535) throw new Fail(it.line, it.col, `value ${v} does not fit in 16 bits`);
      dv.setUint16(it.addr, v & 0xffff, true);
    } else {
      if (v < -128 || v > 255) throw new Fail(it.line, it.col, `value ${v} does not fit in a byte`);
      data[it.addr] = v & 0xff;
    }
  }

  const symbols: Record<string, number> = {};
  for (const [k, s] of syms) {
    if (s.line === 0) continue;
    symbols[k] = evalExpr({ k: 's', name: k, col: s.col }, s.line);
  }
  const startSym = syms.get('start');
  const entry = startSym && startSym.expr === undefined && startSym.value !== undefined && startSym.value < n ? startSym.value : 0;
  return {
    name: file,
    code,
    data,
    dataBase: 0,
    entry,
    symbols,
    lines: srcLines,
    id: programId(code, data, 0, entry),
  };
}
