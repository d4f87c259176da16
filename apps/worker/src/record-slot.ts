/**
 * Where a task's user code is, shared between its thread and the worker's
 * main thread (jobs that skip bad records): the thread writes the record
 * before each call of the app's map or reduce; the main thread reads it for
 * heartbeats (a task that stops making progress is stuck on that record) and
 * when the thread dies mid-call. Plain stores: the reader only looks while
 * the writer is stuck, or once it is gone.
 */
import type { InputRecord } from '@mr/mapreduce-apps';

const KEY_BYTES = 256;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const FIELDS = 8;

export class RecordSlot {
  readonly buffer: SharedArrayBuffer;
  readonly #f: Float64Array;
  readonly #key: Uint8Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(FIELDS * 8 + KEY_BYTES)) {
    this.buffer = buffer;
    this.#f = new Float64Array(buffer, 0, FIELDS);
    this.#key = new Uint8Array(buffer, FIELDS * 8, KEY_BYTES);
  }

  clear(): void {
    this.#f[0] = 0;
  }

  write(r: InputRecord): void {
    const f = this.#f;
    if (r.phase === 'map') {
      f[1] = r.input;
      f[2] = r.offset;
      f[3] = r.bytes;
      f[4] = r.records;
      f[5] = r.line ?? 0;
      f[0] = 1;
    } else {
      f[1] = r.group;
      f[6] = encoder.encodeInto(r.key, this.#key).written;
      f[0] = 2;
    }
  }

  read(): InputRecord | undefined {
    const f = this.#f;
    if (f[0] === 1) return { phase: 'map', input: f[1]!, offset: f[2]!, bytes: f[3]!, records: f[4]!, ...(f[5]! > 0 ? { line: f[5]! } : {}) };
    if (f[0] === 2) return { phase: 'reduce', group: f[1]!, key: decoder.decode(this.#key.slice(0, f[6]!)) };
    return undefined;
  }
}
