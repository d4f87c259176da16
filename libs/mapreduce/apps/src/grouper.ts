/**
 * Grouping key/value pairs by key in Go's byte order with bounded memory:
 * pairs are grouped in memory up to a budget; past it the groups are sorted
 * and spilled to a run file; at the end the runs (and what is still in
 * memory) are merged k-way. A key's values reach `groups()` in the order
 * they were added. Only one key's values need to fit in memory at once.
 *
 * Run and intermediate files: one JSON array per line (JSON escapes \n, so
 * every raw \n ends a record).
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkWriter } from './files.ts';
import { compareBytes, sortBytes } from './order.ts';
import { ERR_BAD_INTERMEDIATE } from './errors.ts';

/** Default memory budget for buffered pairs (map output or reduce input), bytes. */
export const MEMORY_BYTES = 64 << 20;

/** Estimated heap bytes of a string (UTF-16 plus header). */
export const strBytes = (s: string): number => 2 * s.length + 24;

const BLOCK = 1 << 20;

/**
 * Reads a file of JSON lines in blocks, yielding the parsed records in
 * batches (one JSON.parse per block of lines). Memory: a block plus the
 * longest line.
 */
export async function* jsonLines(path: string): AsyncGenerator<unknown[]> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw ERR_BAD_INTERMEDIATE(path, (err as Error).message);
  }
  try {
    let carry: Buffer = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      const block = Buffer.allocUnsafe(BLOCK);
      const { bytesRead } = await fh.read(block, 0, BLOCK, pos);
      pos += bytesRead;
      const data = carry.length ? Buffer.concat([carry, block.subarray(0, bytesRead)]) : block.subarray(0, bytesRead);
      if (bytesRead === 0 && data.length === 0) return;
      const cut = bytesRead === 0 ? data.length - 1 : data.lastIndexOf(10);
      if (cut < 0) {
        carry = data;
        continue;
      }
      const text = data.toString('utf8', 0, cut + 1).replace(/^\n+|\n+$/g, '');
      carry = data.subarray(cut + 1);
      if (text !== '') {
        try {
          yield JSON.parse(`[${text.replace(/\n+/g, ',')}]`) as unknown[];
        } catch (err) {
          if (err instanceof SyntaxError) throw ERR_BAD_INTERMEDIATE(path, err.message);
          throw err;
        }
      }
      if (bytesRead === 0) return;
    }
  } finally {
    await fh.close();
  }
}

interface Run {
  it: AsyncGenerator<unknown[]>;
  batch: unknown[];
  i: number;
  head: [string, string[]] | undefined;
  path: string;
}

async function advanceRun(r: Run): Promise<void> {
  while (r.i >= r.batch.length) {
    const n = await r.it.next();
    if (n.done) {
      r.head = undefined;
      return;
    }
    r.batch = n.value;
    r.i = 0;
  }
  const rec = r.batch[r.i++];
  if (!Array.isArray(rec) || rec.length !== 2 || typeof rec[0] !== 'string' || !Array.isArray(rec[1])) throw ERR_BAD_INTERMEDIATE(r.path, 'a run line is not ["key",[values]]');
  r.head = rec as [string, string[]];
}

export class Grouper {
  readonly #budget: number;
  readonly #spillParent: string;
  #groups = new Map<string, string[]>();
  #bytes = 0;
  #dir: string | undefined;
  #runs: string[] = [];
  readonly #combine: ((key: string, values: string[]) => string[]) | undefined;
  /** Runs spilled so far (a counter for reports and tests). */
  spills = 0;
  /** Values given to the combiner at spills, and the values it gave back. */
  combineIn = 0;
  combineOut = 0;

  /**
   * combine: the app's combiner, run on each group with several values when
   * it is spilled (smaller runs, less to merge); its output is added back as
   * the group's values, in the group's place.
   */
  constructor(budgetBytes = MEMORY_BYTES, spillDir = tmpdir(), combine?: (key: string, values: string[]) => string[]) {
    this.#budget = budgetBytes;
    this.#spillParent = spillDir;
    this.#combine = combine;
  }

  /** Adds a pair (synchronous; call maybeSpill() between batches). */
  add(key: string, value: string): void {
    const g = this.#groups.get(key);
    if (g) g.push(value);
    else {
      this.#groups.set(key, [value]);
      this.#bytes += strBytes(key) + 64;
    }
    this.#bytes += strBytes(value) + 8;
  }

  get bufferedBytes(): number {
    return this.#bytes;
  }

  async maybeSpill(): Promise<void> {
    if (this.#bytes > this.#budget) await this.#spill();
  }

  #sortedKeys(): string[] {
    return sortBytes([...this.#groups.keys()]);
  }

  async #spill(): Promise<void> {
    if (this.#groups.size === 0) return;
    this.#dir ??= await mkdtemp(join(this.#spillParent, 'mr-spill-'));
    const path = join(this.#dir, `run-${this.#runs.length}`);
    const fh = await open(path, 'w');
    try {
      const w = new ChunkWriter(fh);
      for (const k of this.#sortedKeys()) {
        let values = this.#groups.get(k)!;
        if (this.#combine && values.length > 1) {
          this.combineIn += values.length;
          values = this.#combine(k, values).map(String);
          this.combineOut += values.length;
        }
        const p = w.write(`${JSON.stringify([k, values])}\n`);
        if (p) await p;
      }
      await w.flush();
    } finally {
      await fh.close();
    }
    this.#runs.push(path);
    this.spills++;
    this.#groups = new Map();
    this.#bytes = 0;
  }

  /** Every key once, in byte order, with all its values. Call once, after the last add. */
  async *groups(): AsyncGenerator<[string, string[]]> {
    if (this.#runs.length === 0) {
      const groups = this.#groups;
      this.#groups = new Map();
      this.#bytes = 0;
      for (const k of sortBytes([...groups.keys()])) yield [k, groups.get(k)!];
      return;
    }
    await this.#spill();
    const runs: Run[] = this.#runs.map((path) => ({ it: jsonLines(path), batch: [], i: 0, head: undefined, path }));
    for (const r of runs) await advanceRun(r);
    for (;;) {
      // k is small (input size / budget): a linear scan for the smallest head is enough.
      let min: string | undefined;
      for (const r of runs) {
        if (!r.head) continue;
        if (min === undefined || compareBytes(r.head[0], min) < 0) min = r.head[0];
      }
      if (min === undefined) return;
      let values: string[] | undefined;
      for (const r of runs) {
        // Runs are in spill order, so values keep the order they were added in.
        while (r.head && r.head[0] === min) {
          values = values ? values.concat(r.head[1]) : r.head[1];
          await advanceRun(r);
        }
      }
      yield [min, values!];
    }
  }

  /** Removes the spill directory. */
  async close(): Promise<void> {
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}
