import { closeSync, fsyncSync, mkdirSync, openSync, readSync, readFileSync, renameSync, writeSync, existsSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { ERR_BAD_BLOCK, ERR_NOT_OWNER, ERR_STALE_EPOCH, ERR_UNKNOWN_VM } from '../errors.ts';

/** The per-VM fencing flag: who won which epoch. */
export interface TasState {
  epoch: number;
  owner: string;
}

export interface TasResult extends TasState {
  won: boolean;
}

/** Largest read or write, in blocks. */
export const MAX_BLOCKS_PER_OP = 64;

export interface DiskStoreOptions {
  dir: string;
  /** Bytes per disk block. */
  blockSize: number;
  /** Blocks per VM disk (a read past the end is refused, a never-written block reads as zeros). */
  blocks: number;
}

/**
 * The storage node's durable state: one sparse disk file and one flag file per
 * VM. Every mutation is fsynced before the call returns, and every call is
 * synchronous, so two requests can never interleave inside test-and-set (the
 * event loop is the lock) and a restarted node knows who won which epoch.
 */
export class DiskStore {
  readonly blockSize: number;
  readonly blocks: number;
  readonly #dir: string;
  readonly #tas = new Map<string, TasState>();
  readonly #fds = new Map<string, number>();

  constructor(opts: DiskStoreOptions) {
    if (!Number.isInteger(opts.blockSize) || opts.blockSize < 16 || opts.blockSize > 1 << 20) throw new RangeError(`blockSize ${opts.blockSize}`);
    if (!Number.isInteger(opts.blocks) || opts.blocks < 1) throw new RangeError(`blocks ${opts.blocks}`);
    this.blockSize = opts.blockSize;
    this.blocks = opts.blocks;
    this.#dir = opts.dir;
    mkdirSync(this.#dir, { recursive: true });
  }

  #flagPath(vm: string): string {
    return join(this.#dir, `${vm}.tas.json`);
  }

  /** The current flag, or undefined for a VM nobody has claimed yet. */
  flag(vm: string): TasState | undefined {
    let s = this.#tas.get(vm);
    if (!s) {
      const p = this.#flagPath(vm);
      if (!existsSync(p)) return undefined;
      const parsed = JSON.parse(readFileSync(p, 'utf8')) as TasState;
      s = { epoch: parsed.epoch, owner: parsed.owner };
      this.#tas.set(vm, s);
    }
    return s;
  }

  /**
   * Atomic test-and-set: `node` claims `epoch`. It wins when the epoch is newer
   * than the current one (or it already owns exactly this epoch: a retry). A
   * claim of the current epoch by another node loses (data, not an error); a
   * claim of an older epoch is refused with FT_ERR_STALE_EPOCH.
   */
  testAndSet(vm: string, node: string, epoch: number): TasResult {
    const cur = this.flag(vm) ?? { epoch: 0, owner: '' };
    if (epoch < cur.epoch) throw ERR_STALE_EPOCH(epoch, cur.epoch, cur.owner || 'nobody');
    if (epoch === cur.epoch) return { won: cur.owner === node && epoch > 0, epoch: cur.epoch, owner: cur.owner };
    const next = { epoch, owner: node };
    this.#persistFlag(vm, next);
    this.#tas.set(vm, next);
    return { won: true, ...next };
  }

  #persistFlag(vm: string, s: TasState): void {
    const p = this.#flagPath(vm);
    const tmp = `${p}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(s));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, p);
    const dfd = openSync(this.#dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  #fd(vm: string): number {
    let fd = this.#fds.get(vm);
    if (fd === undefined) {
      fd = openSync(join(this.#dir, `${vm}.disk`), 'a+');
      closeSync(fd);
      fd = openSync(join(this.#dir, `${vm}.disk`), 'r+');
      this.#fds.set(vm, fd);
    }
    return fd;
  }

  #checkBlocks(block: number, count: number): void {
    if (!Number.isInteger(count) || count < 1 || count > MAX_BLOCKS_PER_OP) throw ERR_BAD_BLOCK(`count ${count} must be 1..${MAX_BLOCKS_PER_OP}`);
    if (!Number.isInteger(block) || block < 0 || block + count > this.blocks) {
      throw ERR_BAD_BLOCK(`blocks ${block}..${block + count - 1} are outside the disk (0..${this.blocks - 1})`);
    }
  }

  /** Reads `count` blocks from `block` (zeros where nothing was written). The VM must have been claimed. */
  read(vm: string, block: number, count = 1): Buffer {
    if (!this.flag(vm)) throw ERR_UNKNOWN_VM(vm);
    this.#checkBlocks(block, count);
    const fd = this.#fd(vm);
    const len = count * this.blockSize;
    const buf = Buffer.alloc(len);
    const size = fstatSync(fd).size;
    const at = block * this.blockSize;
    if (at < size) readSync(fd, buf, 0, Math.min(len, size - at), at);
    return buf;
  }

  /**
   * Writes whole blocks from `block` (data.length a multiple of the block size), fenced: only the owner of the VM's current epoch may
   * write, so a primary that lost test-and-set can do no harm.
   */
  write(vm: string, node: string, epoch: number, block: number, data: Buffer): void {
    const cur = this.flag(vm);
    if (!cur) throw ERR_UNKNOWN_VM(vm);
    if (epoch < cur.epoch) throw ERR_STALE_EPOCH(epoch, cur.epoch, cur.owner);
    if (epoch !== cur.epoch || node !== cur.owner) throw ERR_NOT_OWNER(node, epoch, `${cur.owner} in epoch ${cur.epoch}`);
    if (data.length === 0 || data.length % this.blockSize !== 0) throw ERR_BAD_BLOCK(`data must be whole ${this.blockSize}-byte blocks, got ${data.length} bytes`);
    this.#checkBlocks(block, data.length / this.blockSize);
    const fd = this.#fd(vm);
    writeSync(fd, data, 0, data.length, block * this.blockSize);
    fsyncSync(fd);
  }

  close(): void {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}
