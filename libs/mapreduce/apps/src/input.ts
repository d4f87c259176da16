/**
 * Reading map input: opening a piece safely and streaming its lines.
 *
 * A split [start, end) owns every line whose first byte lies in it (as
 * Hadoop's TextInputFormat): a split starting mid-line skips to the next
 * line, and a split reads past its end to finish its last line. Lines start
 * at byte 0 and after every \n, so each line is read by exactly one split.
 */
import { constants } from 'node:fs';
import { open, readlink, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { InputPiece } from './types.ts';
import { ERR_INPUT_ESCAPED, ERR_INPUT_NOT_FOUND, ERR_INPUT_UNREADABLE } from './errors.ts';

/** Bytes of whole lines handed to a 'lines' app per map call (a longer line is handed whole). */
export const CHUNK_BYTES = 4 << 20;

/**
 * Opens a piece's file for reading. With `verifyRealPath`, the opened file
 * descriptor's own path (/proc/self/fd/N, what the kernel really opened) must
 * be `path`: a symlink or directory swapped in after the job was accepted
 * cannot redirect the read (no check-then-open race). Never blocks on a FIFO.
 */
export async function openInput(piece: InputPiece, cwd: string): Promise<FileHandle> {
  const path = resolve(cwd, piece.path);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw ERR_INPUT_NOT_FOUND(piece.path);
    throw ERR_INPUT_UNREADABLE(piece.path, (err as Error).message);
  }
  try {
    if (piece.verifyRealPath) {
      const real = await readlink(`/proc/self/fd/${fh.fd}`);
      if (real !== path) throw ERR_INPUT_ESCAPED(piece.path);
    }
    const st = await fh.stat();
    if (!st.isFile()) throw ERR_INPUT_UNREADABLE(piece.path, 'not a regular file');
    return fh;
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

async function readAt(fh: FileHandle, pos: number, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === size ? buf : buf.subarray(0, got);
}

/** Reads a whole file (for 'whole-file' apps). */
export async function readWhole(fh: FileHandle): Promise<Buffer> {
  return fh.readFile();
}

export interface LineChunk {
  /** Whole lines (the file's last line may lack its \n). */
  buf: Buffer;
  /** Byte offset of buf[0] in the file. */
  offset: number;
}

/**
 * The lines that start in [start, end) (end undefined: to the end of the
 * file), in chunks of about `chunkBytes` cut after a \n. Memory: about two
 * chunks, or the longest line if that is longer.
 */
export async function* lineChunks(fh: FileHandle, start = 0, end?: number, chunkBytes = CHUNK_BYTES): AsyncGenerator<LineChunk> {
  const stop = end ?? Number.POSITIVE_INFINITY;
  let off = start;
  if (start > 0) {
    // A line starts at `start` only if the byte before it is \n; else skip to after the next \n.
    const prev = await readAt(fh, start - 1, 1);
    if (prev.length === 0) return;
    if (prev[0] !== 10) {
      for (;;) {
        const b = await readAt(fh, off, chunkBytes);
        if (b.length === 0) return;
        const nl = b.indexOf(10);
        if (nl >= 0) {
          off += nl + 1;
          break;
        }
        off += b.length;
      }
    }
  }
  let buf: Buffer = Buffer.alloc(0);
  let eof = false;
  while (off < stop) {
    // The line holding byte stop-1 is the last one owned: it ends at the first \n at or after it.
    const last = stop - 1 - off;
    if (last < buf.length) {
      const nl = buf.indexOf(10, Math.max(0, last));
      if (nl >= 0) {
        yield { buf: buf.subarray(0, nl + 1), offset: off };
        return;
      }
    }
    if (buf.length >= chunkBytes) {
      const cut = buf.lastIndexOf(10);
      if (cut >= 0) {
        yield { buf: buf.subarray(0, cut + 1), offset: off };
        off += cut + 1;
        buf = buf.subarray(cut + 1);
        continue;
      }
    }
    if (eof) {
      if (buf.length > 0) yield { buf, offset: off };
      return;
    }
    const more = await readAt(fh, off + buf.length, chunkBytes);
    if (more.length < chunkBytes) eof = true;
    buf = buf.length === 0 ? more : Buffer.concat([buf, more]);
  }
}

/** Number of \n bytes in buf. */
export function countLines(buf: Buffer): number {
  let n = 0;
  let i = buf.indexOf(10);
  while (i >= 0) {
    n++;
    i = buf.indexOf(10, i + 1);
  }
  return n;
}
