/**
 * Append-only JSONL journal of the scheduler's persist records, fsynced
 * before the replies of the step that produced them are sent. Appends made
 * while a write is in flight are batched into the next write (group commit).
 *
 * Replay streams the file line by line (1 MiB reads): nothing holds the whole
 * journal. Compaction replaces the journal with a snapshot of the state
 * (write a temporary file, fsync it, rename it over the journal, fsync the
 * directory), so its size stays bounded by the state, not by the history; a
 * crash at any point leaves either the old journal or the new one, whole.
 *
 * A full disk (ENOSPC, EDQUOT) is not fatal: a write that fails for want of
 * space is cut off again (the file is truncated to its last whole record) and
 * retried every second until space returns; meanwhile the records wait in
 * memory, their callers wait, and `full` says why (the coordinator refuses new
 * work then). A compaction that finds no space is given up, and the journal
 * goes on as it was. Any other error (EIO) rejects: the coordinator stops.
 */
import { closeSync, fstatSync, openSync, readSync, rmSync, truncateSync } from 'node:fs';
import { open, mkdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { PersistRecord } from '@mr/mapreduce-core';
import type { DiskFaults } from '@mr/service-kit';

/** Wall-clock times of a job, carried by snapshot records (the core has no clock). */
export interface JobTimes {
  submittedAt: string;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
}

/** A journal line: the record plus the wall-clock time it was written. */
export type JournalLine = PersistRecord & { at: string; times?: JobTimes | undefined };

export interface ReplayStats {
  records: number;
  bytes: number;
  tornTail: boolean;
}

const READ_CHUNK = 1 << 20;
/** How often a journal waiting for space tries its write again. */
export const JOURNAL_SPACE_RETRY_MS = 1000;

/** Errors that mean "no space": the write can succeed later, once space returns. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export interface JournalOptions {
  /** Injected disk faults (drills only: --drill-unsafe), asked before every write and fsync. */
  faults?: DiskFaults | undefined;
  /** Retry period while the disk is full (default JOURNAL_SPACE_RETRY_MS). */
  spaceRetryMs?: number | undefined;
}
/** A line longer than this is corruption, not a record (a job spec with 10,000 long paths is ~40 MiB). */
const MAX_LINE_BYTES = 256 << 20;

/**
 * Reads the journal's lines one at a time. Only the last line may be torn (a
 * crash mid-append: its step was never acknowledged); anything unparseable
 * before the end is corruption and throws. `stats.goodBytes` is the length
 * of the file up to the end of the last whole line.
 */
function* readLines(file: string, stats: ReplayStats & { goodBytes: number; endsWithNewline: boolean }): Generator<JournalLine> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    let carry: Buffer = Buffer.alloc(0);
    let offset = 0;
    let lineNo = 0;
    let torn: { line: number; message: string } | undefined;
    const take = (raw: Buffer, end: number, terminated: boolean): JournalLine | undefined => {
      lineNo++;
      const text = raw.toString('utf8');
      if (text.trim() === '') {
        if (terminated) stats.goodBytes = end;
        return undefined;
      }
      if (torn) throw new Error(`journal ${file}: corrupt line ${torn.line}: ${torn.message}`);
      try {
        const l = JSON.parse(text) as JournalLine;
        stats.goodBytes = end;
        stats.endsWithNewline = terminated;
        return l;
      } catch (err) {
        torn = { line: lineNo, message: (err as Error).message };
        return undefined;
      }
    };
    while (true) {
      const n = readSync(fd, buf, 0, READ_CHUNK, offset);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      let start = 0;
      let nl = chunk.indexOf(10, start);
      while (nl >= 0) {
        const piece = carry.length ? Buffer.concat([carry, chunk.subarray(start, nl)]) : chunk.subarray(start, nl);
        carry = Buffer.alloc(0);
        const l = take(piece, offset + nl + 1, true);
        if (l) {
          stats.records++;
          yield l;
        }
        start = nl + 1;
        nl = chunk.indexOf(10, start);
      }
      if (start < n) {
        carry = Buffer.concat([carry, chunk.subarray(start)]);
        if (carry.length > MAX_LINE_BYTES) throw new Error(`journal ${file}: line ${lineNo + 1} is longer than ${MAX_LINE_BYTES} bytes`);
      }
      offset += n;
    }
    stats.bytes = offset;
    if (carry.length) {
      const l = take(carry, offset, false);
      if (l) {
        stats.records++;
        yield l;
      }
    }
    stats.tornTail = torn !== undefined;
  } finally {
    closeSync(fd);
  }
}

export class Journal {
  readonly file: string;
  #fh: FileHandle;
  #buffer: string[] = [];
  /** Lines in #buffer that a caller waits on (append); the rest are notes. */
  #owed = 0;
  #flushing: Promise<void> | undefined;
  #durable: Promise<void> = Promise.resolve();
  #closed = false;
  #closing = false;
  /** Records and bytes written since the journal was last rewritten from a snapshot (#bytes: the file's size). */
  #records = 0;
  #bytes = 0;
  /** Set while a write waits for space: the error it got. */
  #full: NodeJS.ErrnoException | undefined;
  readonly #faults: DiskFaults | undefined;
  readonly #spaceRetryMs: number;
  onFsync: ((seconds: number, records: number) => void) | undefined;
  onCompact: ((info: { seconds: number; records: number; bytes: number }) => void) | undefined;
  /** The disk is full (a write failed for want of space; it is retried) / a write succeeded again. */
  onFull: ((err: NodeJS.ErrnoException, waitingRecords: number) => void) | undefined;
  onSpace: ((fullForMs: number) => void) | undefined;
  /** A compaction was given up for want of space (the journal goes on as it was). */
  onCompactNoSpace: ((err: NodeJS.ErrnoException) => void) | undefined;

  private constructor(file: string, fh: FileHandle, records: number, bytes: number, opts: JournalOptions) {
    this.file = file;
    this.#fh = fh;
    this.#records = records;
    this.#bytes = bytes;
    this.#faults = opts.faults;
    this.#spaceRetryMs = opts.spaceRetryMs ?? JOURNAL_SPACE_RETRY_MS;
  }

  /** The error of the write waiting for space, or undefined when the journal writes normally. */
  get full(): NodeJS.ErrnoException | undefined {
    return this.#full;
  }

  /**
   * Opens (creating) the journal. `consume` gets its records as a stream (an
   * iterator it must drain), e.g. Scheduler.restore; a torn tail is cut off
   * afterwards and a leftover compaction file is removed.
   */
  static async open<T>(file: string, consume: (lines: Iterable<JournalLine>) => T, opts: JournalOptions = {}): Promise<{ journal: Journal; result: T; stats: ReplayStats }> {
    await mkdir(dirname(file), { recursive: true });
    rmSync(Journal.#tempName(file), { force: true });
    const stats = { records: 0, bytes: 0, tornTail: false, goodBytes: 0, endsWithNewline: true };
    const gen = readLines(file, stats);
    const result = consume(gen);
    // The consumer must have drained it; drain the rest (and run the checks) if not.
    for (const _ of gen) void _;
    // Cut a torn tail off (its step was never acknowledged), so the next record starts on a line of its own.
    if (stats.tornTail) truncateSync(file, stats.goodBytes);
    const fh = await open(file, 'a');
    if (!stats.tornTail && stats.goodBytes > 0 && !stats.endsWithNewline) await fh.appendFile('\n');
    const size = fstatSync(fh.fd).size;
    return { journal: new Journal(file, fh, stats.records, size, opts), result, stats: { records: stats.records, bytes: size, tornTail: stats.tornTail } };
  }

  /** Reads every record (tests and tools; a coordinator streams them into the core instead). */
  static async readAll(file: string): Promise<JournalLine[]> {
    const stats = { records: 0, bytes: 0, tornTail: false, goodBytes: 0, endsWithNewline: true };
    return [...readLines(file, stats)];
  }

  static #tempName(file: string): string {
    return join(dirname(file), `.${basename(file)}.compact`);
  }

  /** Queues records; the returned promise resolves once they (and all before them) are on disk. */
  append(records: readonly PersistRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('journal closed'));
    if (records.length === 0) return this.#durable;
    const at = new Date().toISOString();
    for (const r of records) this.#buffer.push(JSON.stringify({ ...r, at }));
    this.#owed += records.length;
    this.#durable = this.#schedule(() => this.#flush());
    return this.#durable;
  }

  /**
   * Queues records nobody waits for: they are written, in order, with the
   * next append's write, or by flushNotes(). A crash may lose the last ones.
   */
  note(records: readonly PersistRecord[]): void {
    if (this.#closed || records.length === 0) return;
    const at = new Date().toISOString();
    for (const r of records) this.#buffer.push(JSON.stringify({ ...r, at }));
  }

  /** Writes queued notes when no write is in flight (the driver calls it every tick). */
  flushNotes(): void {
    if (this.#closed || this.#buffer.length === 0 || this.#flushing) return;
    this.#durable = this.#schedule(() => this.#flush());
  }

  /**
   * Rewrites the journal as `snapshot()`'s lines, after every write queued
   * before it. `snapshot` runs when the rewrite starts and must describe the
   * state including every record appended so far: those still waiting in
   * the buffer are covered by it and not written again. Resolves once the
   * new journal is durable (appends made meanwhile wait for it).
   */
  compact(snapshot: () => JournalLine[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('journal closed'));
    this.#durable = this.#schedule(() => this.#rewrite(snapshot));
    return this.#durable;
  }

  /** Resolves when everything appended so far is durable. */
  durable(): Promise<void> {
    return this.#durable;
  }

  /** Records someone waits on are not yet durable (notes alone do not count). */
  get pending(): boolean {
    return this.#owed > 0 || this.#flushing !== undefined;
  }

  /** Records and bytes in the journal file now (since the last compaction). */
  get size(): { records: number; bytes: number } {
    return { records: this.#records, bytes: this.#bytes };
  }

  #schedule(step: () => Promise<void>): Promise<void> {
    const prev = this.#flushing ?? Promise.resolve();
    const next = prev.then(step);
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
    this.#owed = 0;
    const t0 = performance.now();
    const text = lines.join('\n') + '\n';
    let fullSince = 0;
    for (;;) {
      try {
        await this.#faults?.beforeWrite();
        await this.#fh.appendFile(text);
        await this.#faults?.beforeSync('fdatasync');
        await this.#fh.datasync();
        break;
      } catch (err) {
        if (!isNoSpace(err) || this.#closing) throw err;
        // Part of the text may be in the file: cut it off, so the retry starts on a line of its own.
        await this.#fh.truncate(this.#bytes);
        if (!this.#full) {
          fullSince = performance.now();
          this.#full = err as NodeJS.ErrnoException;
          this.onFull?.(this.#full, lines.length + this.#buffer.length);
        }
        await new Promise((r) => setTimeout(r, this.#spaceRetryMs));
      }
    }
    if (this.#full) {
      this.#full = undefined;
      this.onSpace?.(performance.now() - fullSince);
    }
    this.#records += lines.length;
    this.#bytes += Buffer.byteLength(text);
    this.onFsync?.((performance.now() - t0) / 1000, lines.length);
  }

  async #rewrite(snapshot: () => JournalLine[]): Promise<void> {
    const t0 = performance.now();
    const lines = snapshot();
    // Records still buffered are part of the snapshot's state (kept until the new journal is in place).
    const covered = this.#buffer;
    const owed = this.#owed;
    this.#buffer = [];
    this.#owed = 0;
    const tmp = Journal.#tempName(this.file);
    let bytes = 0;
    try {
      const fh = await open(tmp, 'w');
      try {
        let chunk: string[] = [];
        let size = 0;
        for (const l of lines) {
          const s = JSON.stringify(l);
          chunk.push(s);
          size += s.length;
          if (size >= READ_CHUNK) {
            const text = chunk.join('\n') + '\n';
            await this.#faults?.beforeWrite();
            await fh.write(text);
            bytes += Buffer.byteLength(text);
            chunk = [];
            size = 0;
          }
        }
        if (chunk.length) {
          const text = chunk.join('\n') + '\n';
          await this.#faults?.beforeWrite();
          await fh.write(text);
          bytes += Buffer.byteLength(text);
        }
        await this.#faults?.beforeSync();
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await rm(tmp, { force: true });
      if (!isNoSpace(err)) throw err;
      // No room for the snapshot: the journal stays as it was, and the records it covered are appended after all.
      this.#buffer = covered.concat(this.#buffer);
      this.#owed += owed;
      this.onCompactNoSpace?.(err as NodeJS.ErrnoException);
      await this.#flush();
      return;
    }
    await rename(tmp, this.file);
    const dir = await open(dirname(this.file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    const old = this.#fh;
    this.#fh = await open(this.file, 'a');
    await old.close();
    this.#records = lines.length;
    this.#bytes = bytes;
    this.onCompact?.({ seconds: (performance.now() - t0) / 1000, records: lines.length, bytes });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // A write waiting for space gives up (its records were never acknowledged).
    this.#closing = true;
    this.flushNotes();
    await this.#durable.catch(() => {});
    this.#closed = true;
    await this.#fh.close();
  }
}
