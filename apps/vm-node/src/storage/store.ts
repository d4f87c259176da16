import { closeSync, fsyncSync, mkdirSync, openSync, readSync, readFileSync, readdirSync, renameSync, writeSync, existsSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { decideFence, decideTas, decideWrite, type TasDecision, MAX_BLOCKS_PER_OP, MAX_EPOCH, UNCLAIMED, type TasFlag } from '@mr/vmft-protocol';
import { ERR_BAD_BLOCK, ERR_NOT_OWNER, ERR_STALE_EPOCH, ERR_UNKNOWN_VM } from '../errors.ts';
import { ERR_BAD_EPOCH, ERR_BAD_FLAG_FILE, ERR_EPOCH_GAP, ERR_NODE_NOT_REGISTERED, ERR_TOO_MANY_VMS } from './errors.ts';

export { MAX_BLOCKS_PER_OP };

export interface TasResult extends TasFlag {
  won: boolean;
}

/** VMs a storage node without configured VMs (dev mode) takes, at most. */
export const DEFAULT_MAX_OPEN_VMS = 16;

export interface DiskStoreOptions {
  dir: string;
  /** Bytes per disk block. */
  blockSize: number;
  /** Blocks per VM disk (a read past the end is refused, a never-written block reads as zeros). */
  blocks: number;
  /**
   * The VMs this node stores, each with the node ids that may claim it
   * (test-and-set). Any other VM id is unknown (404) and costs nothing. Without
   * it (dev mode) any VM id and node id may claim, up to `maxOpenVms` VMs.
   */
  vms?: ReadonlyMap<string, readonly string[]> | undefined;
  /** Dev mode only: how many VMs the node takes (default DEFAULT_MAX_OPEN_VMS). */
  maxOpenVms?: number;
}

/**
 * The storage node's durable state: one sparse disk file and one flag file per
 * VM. Every mutation is fsynced before the call returns, and every call is
 * synchronous, so two requests can never interleave inside test-and-set (the
 * event loop is the lock) and a restarted node knows who won which epoch.
 *
 * State is bounded: flags and open files exist only for the configured VMs
 * (or, in dev mode, for at most `maxOpenVms` claimed ones); a request naming
 * any other VM id is refused without touching the disk.
 */
export class DiskStore {
  readonly blockSize: number;
  readonly blocks: number;
  /** The configured VMs and their registered node ids, or undefined in dev mode. */
  readonly vms: ReadonlyMap<string, ReadonlySet<string>> | undefined;
  readonly maxOpenVms: number;
  readonly #dir: string;
  /** Flags of the VMs this node holds: configured ones (claimed or not), or claimed ones in dev mode. */
  readonly #flags = new Map<string, TasFlag>();
  readonly #fds = new Map<string, number>();

  constructor(opts: DiskStoreOptions) {
    if (!Number.isInteger(opts.blockSize) || opts.blockSize < 16 || opts.blockSize > 1 << 20) throw new RangeError(`blockSize ${opts.blockSize}`);
    if (!Number.isInteger(opts.blocks) || opts.blocks < 1) throw new RangeError(`blocks ${opts.blocks}`);
    this.blockSize = opts.blockSize;
    this.blocks = opts.blocks;
    this.#dir = opts.dir;
    this.maxOpenVms = opts.maxOpenVms ?? DEFAULT_MAX_OPEN_VMS;
    this.vms = opts.vms ? new Map([...opts.vms].map(([vm, nodes]) => [vm, new Set(nodes)])) : undefined;
    mkdirSync(this.#dir, { recursive: true });
    if (this.vms) {
      for (const vm of this.vms.keys()) this.#flags.set(vm, this.#loadFlag(vm) ?? UNCLAIMED);
    } else {
      // Dev mode: the VMs claimed before a restart are still held (they count against the cap).
      for (const name of readdirSync(this.#dir)) {
        const m = /^(.+)\.tas\.json$/.exec(name);
        if (m) this.#flags.set(m[1]!, this.#loadFlag(m[1]!) ?? UNCLAIMED);
      }
    }
  }

  #flagPath(vm: string): string {
    return join(this.#dir, `${vm}.tas.json`);
  }

  #loadFlag(vm: string): TasFlag | undefined {
    const p = this.#flagPath(vm);
    if (!existsSync(p)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(p, 'utf8'));
    } catch (err) {
      throw ERR_BAD_FLAG_FILE(vm, (err as Error).message);
    }
    const f = parsed as Partial<TasFlag>;
    if (!Number.isInteger(f.epoch) || f.epoch! < 0 || f.epoch! > MAX_EPOCH || typeof f.owner !== 'string') throw ERR_BAD_FLAG_FILE(vm, JSON.stringify(parsed).slice(0, 100));
    return { epoch: f.epoch!, owner: f.owner };
  }

  /** True when this node holds `vm` (configured, or claimed in dev mode). */
  holds(vm: string): boolean {
    return this.#flags.has(vm);
  }

  /** The VMs this node holds (configured ones, or claimed ones in dev mode). */
  heldVms(): string[] {
    return [...this.#flags.keys()];
  }

  /** How many VMs this node holds. */
  get vmCount(): number {
    return this.#flags.size;
  }

  /** Open disk files (at most one per held VM). */
  get openFiles(): number {
    return this.#fds.size;
  }

  /**
   * The current flag: UNCLAIMED for a configured VM nobody claimed yet, and (dev
   * mode) for a VM id this node has never seen. Throws FT_ERR_UNKNOWN_VM for a
   * VM id that is not configured.
   */
  flag(vm: string): TasFlag {
    const f = this.#flags.get(vm);
    if (f) return f;
    if (this.vms) throw ERR_UNKNOWN_VM(vm);
    return UNCLAIMED;
  }

  /**
   * Atomic test-and-set: `node` claims `epoch` (decideTas is the rule). A loss
   * is data; a claim from a node not registered for the VM, one that skips
   * epochs or names one out of range, and (dev mode) a new VM past the cap are
   * refused with a coded error and change nothing.
   */
  testAndSet(vm: string, node: string, epoch: number): TasResult {
    return this.#claim(vm, node, epoch, decideTas);
  }

  /**
   * The disk fence for an epoch another service arbitrated (etcd): decideFence
   * is the rule (it may skip epochs, never goes back). Same registration,
   * range and cap checks as testAndSet; writes of older epochs are refused after it.
   */
  fence(vm: string, node: string, epoch: number): TasResult {
    return this.#claim(vm, node, epoch, decideFence);
  }

  #claim(vm: string, node: string, epoch: number, decide: (flag: TasFlag, node: string, epoch: number) => TasDecision): TasResult {
    if (this.vms) {
      const nodes = this.vms.get(vm);
      if (!nodes) throw ERR_UNKNOWN_VM(vm);
      if (!nodes.has(node)) throw ERR_NODE_NOT_REGISTERED(node, vm);
    }
    const cur = this.flag(vm);
    const d = decide(cur, node, epoch);
    if (d.outcome === 'refused') throw d.why === 'epoch-gap' ? ERR_EPOCH_GAP(epoch, cur.epoch) : ERR_BAD_EPOCH(epoch, MAX_EPOCH);
    if (d.outcome === 'won' && d.changed) {
      if (!this.#flags.has(vm) && this.#flags.size >= this.maxOpenVms) throw ERR_TOO_MANY_VMS(vm, this.maxOpenVms);
      this.#persistFlag(vm, d.flag);
      this.#flags.set(vm, d.flag);
    }
    return { won: d.outcome === 'won', epoch: d.flag.epoch, owner: d.flag.owner };
  }

  #persistFlag(vm: string, s: TasFlag): void {
    const p = this.#flagPath(vm);
    const tmp = `${p}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify({ epoch: s.epoch, owner: s.owner }));
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

  /** The disk file of a held VM (opened once; only held VMs ever get one). */
  #fd(vm: string): number {
    let fd = this.#fds.get(vm);
    if (fd === undefined) {
      if (!this.#flags.has(vm)) throw ERR_UNKNOWN_VM(vm);
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
    if (this.flag(vm).epoch === 0) throw ERR_UNKNOWN_VM(vm);
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
   * write, so a primary that lost test-and-set (or any other node) can do no harm.
   */
  write(vm: string, node: string, epoch: number, block: number, data: Buffer): void {
    const cur = this.flag(vm);
    if (cur.epoch === 0) throw ERR_UNKNOWN_VM(vm);
    const fence = decideWrite(cur, node, epoch);
    if (fence === 'stale') throw ERR_STALE_EPOCH(epoch, cur.epoch, cur.owner);
    if (fence === 'not-owner') throw ERR_NOT_OWNER(node, epoch, `${cur.owner} in epoch ${cur.epoch}`);
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
