/**
 * Append-only JSONL journal of the scheduler's persist records, fsynced
 * before the replies of the step that produced them are sent. Appends made
 * while a write is in flight are batched into the next write (group commit).
 */
import { open, readFile, mkdir, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PersistRecord } from '@mr/mapreduce-core';

/** A journal line: the record plus the wall-clock time it was written. */
export type JournalLine = PersistRecord & { at: string };

export interface JournalStats {
  writes: number;
  records: number;
  fsyncSeconds: number[];
}

export class Journal {
  #fh: FileHandle;
  #buffer: string[] = [];
  #flushing: Promise<void> | undefined;
  #durable: Promise<void> = Promise.resolve();
  #closed = false;
  onFsync: ((seconds: number, records: number) => void) | undefined;

  private constructor(fh: FileHandle) {
    this.#fh = fh;
  }

  /** Opens (creating) the journal and returns it with every record already in it. */
  static async open(file: string): Promise<{ journal: Journal; lines: JournalLine[] }> {
    await mkdir(dirname(file), { recursive: true });
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines: JournalLine[] = [];
    let tornTail = false;
    const raw = text.split('\n');
    for (let i = 0; i < raw.length; i++) {
      const l = raw[i]!;
      if (l === '') continue;
      try {
        lines.push(JSON.parse(l) as JournalLine);
      } catch (err) {
        // Only the last line can be torn (a crash mid-append): its step was never acknowledged.
        if (raw.slice(i + 1).some((x) => x !== '')) throw new Error(`journal ${file}: corrupt line ${i + 1}: ${(err as Error).message}`);
        tornTail = true;
      }
    }
    // Cut a torn tail off (its step was never acknowledged), so the next record starts on a line of its own.
    if (tornTail) await truncate(file, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
    const fh = await open(file, 'a');
    if (!tornTail && text !== '' && !text.endsWith('\n')) await fh.appendFile('\n');
    return { journal: new Journal(fh), lines };
  }

  /** Queues records; the returned promise resolves once they (and all before them) are on disk. */
  append(records: readonly PersistRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('journal closed'));
    if (records.length === 0) return this.#durable;
    const at = new Date().toISOString();
    for (const r of records) this.#buffer.push(JSON.stringify({ ...r, at }));
    this.#durable = this.#schedule();
    return this.#durable;
  }

  /** Resolves when everything appended so far is durable. */
  durable(): Promise<void> {
    return this.#durable;
  }

  get pending(): boolean {
    return this.#buffer.length > 0 || this.#flushing !== undefined;
  }

  #schedule(): Promise<void> {
    const prev = this.#flushing ?? Promise.resolve();
    const next = prev.then(() => this.#flush());
    this.#flushing = next;
    void next.finally(() => {
      if (this.#flushing === next) this.#flushing = undefined;
    }).catch(() => {});
    return next;
  }

  async #flush(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const lines = this.#buffer;
    this.#buffer = [];
    const t0 = performance.now();
    await this.#fh.appendFile(lines.join('\n') + '\n');
    await this.#fh.datasync();
    this.onFsync?.((performance.now() - t0) / 1000, lines.length);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#durable.catch(() => {});
    this.#closed = true;
    await this.#fh.close();
  }
}
