/**
 * @mr/vm-node: the FT VM's services.
 *
 * - startStorage({port, dataDir}) — the storage node (virtual disks + test-and-set flags).
 * - startNode({id, role, port, storageUrl, peerUrl?, joinUrl?, guest}) — a primary,
 *   backup or joining node. Start storage, then the backup, then the primary with
 *   peerUrl = the backup's URL (a primary that hears no backup within
 *   suspectTicks goes on alone; a backup counts silence only after a primary
 *   streamed to it). A later backup joins with joinUrl = the live node's URL.
 * - buildStorageApp / buildNodeApp — the same as Fastify instances for inject() tests.
 * - LogSender / registerLogReceiver — the HTTP/2 log channel.
 *
 * To run them as processes instead: `node apps/cli/bin/mr.js vm storage|node ...`
 * (each prints "... listening on URL" on stdout).
 */
export { startStorage, startNode, type Listening, type StartStorageOptions, type StartNodeOptions } from './server.ts';
export { buildNodeApp, type NodeAppOptions } from './node/app.ts';
export { VmDriver, type VmNodeOptions } from './node/driver.ts';
export { LogSender, registerLogReceiver, type LogSink, type LogSession, type LogSenderOptions } from './log-channel.ts';
export { dualProtocolServerFactory, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits, type ConnectionStats, type DualServer } from './dual-server.ts';
export { buildStorageApp, type StorageAppOptions } from './storage/app.ts';
export { DiskStore, DEFAULT_MAX_OPEN_VMS, type TasResult, type DiskStoreOptions } from './storage/store.ts';
export * from './storage/errors.ts';
export { StorageClient, type WriteOutcome } from './node/storage-client.ts';
export { EtcdArbiter, createArbiter, ERR_ARBITER_UNAVAILABLE, type Arbiter } from './node/arbiter.ts';
export { parseStorageOptions, ERR_ARBITER_CONFIG, type ArbiterConfig, type StorageOptions } from './node/arbiter-config.ts';
export * from './errors.ts';
