import type { Counter, Gauge } from 'prom-client';
import type { DiskStore } from '../store.ts';

/** What the storage routes share: the store and the storage node's metrics. */
export interface StorageRouteOptions {
  store: DiskStore;
  metrics: {
    tasTotal: Counter<'outcome'>;
    ioTotal: Counter<'op' | 'outcome'>;
    epochGauge: Gauge<'vm'>;
  };
}

/** Every storage route takes the peer credential only. */
export const peer = { auth: 'peer' } as const;
