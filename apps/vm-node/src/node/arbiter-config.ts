/**
 * `mr vm node --storage … [--disk …]` as a validated config (arbiter.ts
 * explains the two arbiters). Light on purpose: the CLI parses it before it
 * starts telemetry and loads the node.
 */
import { createError } from '@mr/errors';

/** Where a node's arbitration and virtual disk live, validated once at start (parseStorageOptions). */
export type ArbiterConfig = { kind: 'storage' } | { kind: 'etcd'; endpoints: readonly string[] };

export interface StorageOptions {
  /** The storage node: virtual disks (and, with kind 'storage', arbitration). */
  storageUrl: string;
  arbiter: ArbiterConfig;
}

export const ERR_ARBITER_CONFIG = createError<[string]>('FT_ERR_ARBITER_CONFIG', '%s', 400, { retryable: false });

/** At most this many etcd endpoints. */
export const MAX_ETCD_ENDPOINTS = 16;

/**
 * `--storage` and `--disk` as given to `mr vm node`: `--storage http://HOST:PORT` (the storage node
 * arbitrates and holds the disk; no --disk), or `--storage etcd://HOST:PORT[,HOST:PORT…]` with
 * `--disk http://HOST:PORT` (the storage node that holds the disk). Throws FT_ERR_ARBITER_CONFIG.
 */
export function parseStorageOptions(storage: string, disk: string | undefined): StorageOptions {
  const base = (what: string, url: string): string => {
    if (!/^http:\/\/[^/\s]+\/?$/.test(url)) throw ERR_ARBITER_CONFIG(`${what} must be a base URL like http://10.0.0.5:7080, got "${url}"`);
    return new URL(url).origin;
  };
  if (!storage.startsWith('etcd://')) {
    if (disk !== undefined) throw ERR_ARBITER_CONFIG('--disk is only for --storage etcd://… (the storage node given to --storage holds the disk already)');
    return { storageUrl: base('--storage', storage), arbiter: { kind: 'storage' } };
  }
  const list = storage.slice('etcd://'.length).split(',');
  if (list.length > MAX_ETCD_ENDPOINTS) throw ERR_ARBITER_CONFIG(`--storage etcd://: at most ${MAX_ETCD_ENDPOINTS} endpoints, got ${list.length}`);
  const endpoints = list.map((hp) => {
    const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(hp);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw ERR_ARBITER_CONFIG(`--storage etcd://HOST:PORT,HOST:PORT…: bad endpoint "${hp}"`);
    return `http://${hp}`;
  });
  if (new Set(endpoints).size !== endpoints.length) throw ERR_ARBITER_CONFIG('--storage etcd://: an endpoint is given twice');
  if (disk === undefined) throw ERR_ARBITER_CONFIG('--storage etcd://… arbitrates only: give --disk http://HOST:PORT, the storage node that holds the virtual disk');
  return { storageUrl: base('--disk', disk), arbiter: { kind: 'etcd', endpoints } };
}

