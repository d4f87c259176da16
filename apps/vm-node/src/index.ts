/**
 * @mr/vm-node: the FT VM's services.
 *
 * - startStorage({port, dataDir}) — the storage node (virtual disks + test-and-set flags).
 * - buildStorageApp(...) — the same as a Fastify instance for inject() tests.
 */
export { startStorage, type Listening, type StartStorageOptions } from './server.ts';
export { buildStorageApp, type StorageAppOptions } from './storage/app.ts';
export { DiskStore, type TasState, type TasResult } from './storage/store.ts';
export * from './errors.ts';
