/**
 * Injectable disk faults, for chaos drills: the file layer of a service (the
 * coordinator's journal, the storage node's store) asks this object before
 * each write and each fsync, and it delays the call or fails it the way the
 * kernel would (an Error with `code` ENOSPC or EIO). A service mounts the
 * control route (PUT/GET /v1/drill/disk) only when started with
 * --drill-unsafe; without it the object is never consulted.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuthRole } from './service.ts';

export const DISK_FAULT_DELAY_MAX_MS = 60_000;

export const DiskFaultSettings = Type.Object(
  {
    /** Each write waits this long first. */
    writeDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: DISK_FAULT_DELAY_MAX_MS })),
    /** Each fsync waits this long first. */
    syncDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: DISK_FAULT_DELAY_MAX_MS })),
    /** Every write (ENOSPC: no space left) or every write and fsync (EIO) fails. */
    error: Type.Optional(Type.Union([Type.Literal('ENOSPC'), Type.Literal('EIO')])),
  },
  { additionalProperties: false },
);
export type DiskFaultSettings = Static<typeof DiskFaultSettings>;

const ERRNO: Record<NonNullable<DiskFaultSettings['error']>, { errno: number; text: string }> = {
  ENOSPC: { errno: -28, text: 'no space left on device' },
  EIO: { errno: -5, text: 'i/o error' },
};

/** The error the kernel would give, marked as injected. */
export function injectedDiskError(code: NonNullable<DiskFaultSettings['error']>, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${ERRNO[code].text}, ${syscall} (injected by a drill)`), { code, errno: ERRNO[code].errno, syscall });
}

/** A blocking sleep for synchronous file layers (a slow fsync blocks its thread too). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class DiskFaults {
  #s: DiskFaultSettings = {};

  get settings(): DiskFaultSettings {
    return { ...this.#s };
  }

  /** Replaces the faults ({} clears them). */
  set(s: DiskFaultSettings): void {
    this.#s = { ...s };
  }

  async beforeWrite(syscall = 'write'): Promise<void> {
    const { writeDelayMs, error } = this.#s;
    if (writeDelayMs) await new Promise((r) => setTimeout(r, writeDelayMs));
    if (error) throw injectedDiskError(error, syscall);
  }

  async beforeSync(syscall = 'fsync'): Promise<void> {
    const { syncDelayMs, error } = this.#s;
    if (syncDelayMs) await new Promise((r) => setTimeout(r, syncDelayMs));
    if (error === 'EIO') throw injectedDiskError(error, syscall);
  }

  beforeWriteSync(syscall = 'write'): void {
    const { writeDelayMs, error } = this.#s;
    if (writeDelayMs) sleepSync(writeDelayMs);
    if (error) throw injectedDiskError(error, syscall);
  }

  beforeSyncSync(syscall = 'fsync'): void {
    const { syncDelayMs, error } = this.#s;
    if (syncDelayMs) sleepSync(syncDelayMs);
    if (error === 'EIO') throw injectedDiskError(error, syscall);
  }
}

/**
 * PUT /v1/drill/disk (the faults, replacing the current ones; {} clears them) and
 * GET /v1/drill/disk. Mount it only for a service started with --drill-unsafe.
 */
export function diskFaultRoutes(app: FastifyInstance, faults: DiskFaults, auth: AuthRole): void {
  const schema = { response: { 200: DiskFaultSettings } };
  app.get('/v1/drill/disk', { config: { auth }, schema }, async () => faults.settings);
  app.put<{ Body: DiskFaultSettings }>('/v1/drill/disk', { config: { auth }, schema: { ...schema, body: DiskFaultSettings } }, async (req) => {
    faults.set(req.body);
    app.log.warn({ diskFaults: req.body }, 'DRILL-UNSAFE: injected disk faults changed');
    return faults.settings;
  });
}
