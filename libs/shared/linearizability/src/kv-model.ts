/**
 * A sequential model of the `kv` guest (libs/vmft/guests/src/kv.ts and asm/kv.s), one key at a
 * time: the state of a key is its value, or null when the key is missing.
 *
 *   get            → the value; not found (null) when missing; no change
 *   put v          → v; too-large when v is over 188 UTF-8 bytes (no change)
 *   append v       → old + v (a missing key counts as ""); too-large past 188 bytes (no change)
 *   incr [delta]   → old + delta (delta 1 by default) in decimal, 32-bit two's-complement
 *                    wrap-around; a missing key counts as 0; not-a-number (no change) when the
 *                    stored value or the delta is not `-?[0-9]+` (digits accumulate with 32-bit
 *                    wrap-around, as the guest parses them)
 *
 * The guest's "table full" answer depends on every key at once, so it is outside this per-key
 * model (a history holding it fails validation).
 */
export const KV_MODEL_OPS = ['get', 'put', 'append', 'incr'] as const;
export type KvModelOp = (typeof KV_MODEL_OPS)[number];

/** Errors the model can produce. A recorded `refused` error matches any of them. */
export const KV_MODEL_ERRORS = ['too-large', 'not-a-number'] as const;
export type KvModelError = (typeof KV_MODEL_ERRORS)[number];

/** What an operation returned: a value (null: not found), or a refusal. */
export type KvResult = { value: string | null } | { error: KvModelError | 'refused' };

export type KvState = string | null;

export const KV_MAX_VALUE_BYTES = 188;

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** The guest's parse_int: `-?[0-9]+`, digits accumulated with 32-bit wrap-around; undefined when not a number. */
export function parseGuestInt(s: string): number | undefined {
  if (s.length === 0) return undefined;
  let i = 0, neg = false;
  if (s.charCodeAt(0) === 45 /* - */) {
    neg = true;
    i = 1;
    if (s.length === 1) return undefined;
  }
  let v = 0;
  for (; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    v = (Math.imul(v, 10) + d) | 0;
  }
  return neg ? -v | 0 : v;
}

export interface KvStep {
  /** The state after the operation. */
  next: KvState;
  /** What the guest answers. */
  result: KvResult;
}

/** Applies one operation to a key's state, as the guest does. */
export function kvStep(state: KvState, op: KvModelOp, value: string | undefined): KvStep {
  switch (op) {
    case 'get':
      return { next: state, result: { value: state } };
    case 'put': {
      const v = value ?? '';
      if (utf8Length(v) > KV_MAX_VALUE_BYTES) return { next: state, result: { error: 'too-large' } };
      return { next: v, result: { value: v } };
    }
    case 'append': {
      const v = (state ?? '') + (value ?? '');
      if (utf8Length(v) > KV_MAX_VALUE_BYTES) return { next: state, result: { error: 'too-large' } };
      return { next: v, result: { value: v } };
    }
    case 'incr': {
      const cur = state === null ? 0 : parseGuestInt(state);
      if (cur === undefined) return { next: state, result: { error: 'not-a-number' } };
      const delta = value === undefined || value === '' ? 1 : parseGuestInt(value);
      if (delta === undefined) return { next: state, result: { error: 'not-a-number' } };
      const v = String((cur + delta) | 0);
      return { next: v, result: { value: v } };
    }
  }
}

/** Whether a recorded result is the one the model expects. */
export function kvResultMatches(expected: KvResult, recorded: KvResult): boolean {
  if ('value' in expected) return 'value' in recorded && recorded.value === expected.value;
  return 'error' in recorded && (recorded.error === 'refused' || recorded.error === expected.error);
}

export function formatKvResult(r: KvResult | 'unknown'): string {
  if (r === 'unknown') return 'unknown';
  if ('error' in r) return `error ${r.error}`;
  return r.value === null ? 'not found' : JSON.stringify(r.value);
}
