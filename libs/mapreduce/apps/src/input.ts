/**
 * Reading map input: opening a piece safely and streaming its lines.
 *
 * A split [start, end) owns every line whose first byte lies in it (as
 * Hadoop's TextInputFormat): a split starting mid-line skips to the next
 * line, and a split reads past its end to finish its last line. Lines start
 * at byte 0 and after every \n, so each line is read by exactly one split.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync, readSync } from 'node:fs';
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

/**
 * An input opened for a map task: read with blocking calls. A task runs in a
 * thread of its own (or in `mr seq`), so blocking costs nothing there, while
 * each asynchronous call is a round trip through libuv's thread pool, which
 * all of a worker's slots share: for a split of 64 tiny files that was most
 * of the task's time. The coordinator (sampling for the range partitioner)
 * uses the asynchronous openInput instead.
 */
export interface InputFd {
  fd: number;
  /** Size when opened (reads go on to the real end of the file). */
  size: number;
}

/** openInput with blocking calls (same checks): for task threads and `mr seq`. */
export function openInputSync(piece: InputPiece, cwd: string): InputFd {
  const path = resolve(cwd, piece.path);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw ERR_INPUT_NOT_FOUND(piece.path);
    throw ERR_INPUT_UNREADABLE(piece.path, (err as Error).message);
  }
  try {
    if (piece.verifyRealPath && readlinkSync(`/proc/self/fd/${fd}`) !== path) throw ERR_INPUT_ESCAPED(piece.path);
    const st = fstatSync(fd);
    if (!st.isFile()) throw ERR_INPUT_UNREADABLE(piece.path, 'not a regular file');
    return { fd, size: st.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

export function closeInput(f: InputFd): void {
  closeSync(f.fd);
}

/** Reads a whole file (for 'whole-file' apps). */
export function readWhole(f: InputFd): Buffer {
  return readFileSync(f.fd);
}

/** An open input: a FileHandle (asynchronous reads) or an InputFd (blocking reads). */
export type InputSource = FileHandle | InputFd;

const blocking = (src: InputSource): src is InputFd => !('read' in src);

/** Reads up to `size` bytes at `pos` (fewer only at the end of the file). */
async function readAt(src: InputSource, pos: number, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = blocking(src) ? readSync(src.fd, buf, got, size - got, pos + got) : (await src.read(buf, got, size - got, pos + got)).bytesRead;
    if (n === 0) break;
    got += n;
  }
  return got === size ? buf : buf.subarray(0, got);
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
 * chunks, or the longest line if that is longer. Reads are sized to what is
 * left of the file as it was when opened (an InputFd knows it; plus one byte,
 * to see the end in the same read), so a tiny file costs a tiny buffer, not
 * a chunk; a file that grew since is read on in whole chunks.
 */
export async function* lineChunks(fh: InputSource, start = 0, end?: number, chunkBytes = CHUNK_BYTES): AsyncGenerator<LineChunk> {
  let known = blocking(fh) ? fh.size : undefined;
  /** How much to read at `pos`: the rest of the known size and a byte (at most a chunk), or a chunk. */
  const want = (pos: number): number => {
    if (known === undefined) return chunkBytes;
    return Math.max(1, Math.min(chunkBytes, known - pos + 1));
  };
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
    const size = want(off + buf.length);
    const more = await readAt(fh, off + buf.length, size);
    if (more.length < size) eof = true;
    // Bigger than when opened: read on in whole chunks.
    else if (size < chunkBytes) known = undefined;
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
