/**
 * Files that become visible only whole: written to a hidden temporary file
 * in the same directory (never matching `mr-*`), then renamed.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const CHUNK = 1 << 20;

/** Buffers string pieces and writes them to a file handle in chunks (default ~1 MB). */
export class ChunkWriter {
  private parts: string[] = [];
  private size = 0;
  bytes = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly chunk = CHUNK,
  ) {}

  /** Queues `s`; returns a promise (to await) only when a chunk is being written. */
  write(s: string): Promise<void> | undefined {
    this.push(s);
    return this.size >= this.chunk ? this.flush() : undefined;
  }

  /** Queues `s` without writing (for synchronous callers; they flush later). */
  push(s: string): void {
    this.parts.push(s);
    this.size += s.length;
  }

  /** Characters queued and not yet written. */
  get queued(): number {
    return this.size;
  }

  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const buf = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.size = 0;
    this.bytes += buf.length;
    await this.fh.write(buf);
  }
}

/**
 * A temporary name beside `finalPath` that no `mr-*` glob matches. With a
 * `tag` (unique per task attempt) the name is predictable, so whoever killed
 * an attempt can remove what it left: `.tmp-<name>-<tag>`.
 */
export function tempNameFor(finalPath: string, tag?: string): string {
  return join(dirname(finalPath), `.tmp-${basename(finalPath)}-${tag ?? `${process.pid}-${randomBytes(4).toString('hex')}`}`);
}

/**
 * Writes `finalPath` atomically: `fill` writes into a temporary file, which
 * is then renamed over `finalPath`. On failure the temporary file is removed
 * and `finalPath` is untouched. Resolves to the number of bytes written.
 */
export async function writeAtomically(finalPath: string, fill: (w: ChunkWriter) => Promise<void>, tag?: string): Promise<number> {
  const tmp = tempNameFor(finalPath, tag);
  const fh = await open(tmp, 'w');
  let ok = false;
  try {
    const w = new ChunkWriter(fh);
    await fill(w);
    await w.flush();
    await fh.close();
    await rename(tmp, finalPath);
    ok = true;
    return w.bytes;
  } finally {
    if (!ok) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
    }
  }
}
