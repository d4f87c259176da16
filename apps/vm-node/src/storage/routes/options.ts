import type { DiskStore } from '../store.ts';
import type { StorageMetrics } from '../metrics.ts';

/** What the storage routes share: the store and the storage node's metrics. */
export interface StorageRouteOptions {
  store: DiskStore;
  metrics: StorageMetrics;
}

/** Every storage route takes the peer credential only. */
export const peer = { auth: 'peer' } as const;
