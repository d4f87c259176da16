import { VmClient, type VmClientOptions } from './client.ts';

export interface LoadOptions extends VmClientOptions {
  /** Total unique incr requests. */
  requests: number;
  /** Concurrent clients (each with its own session, one request at a time). */
  clients: number;
  /** Counter key (default "counter"). */
  key?: string;
  /** Called after each answer (progress, kill triggers in tests). */
  onAnswer?: (done: number) => void;
}

export interface LoadReport {
  requests: number;
  answered: number;
  failed: number;
  /** Failed requests whose effect is unknown (they may have been applied, once). */
  unknown: number;
  errors: string[];
  /** The counter value each answered incr returned (one per request, in answer order). */
  values: number[];
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  elapsedMs: number;
  /** Requests per second over the run. */
  throughput: number;
  /** Attempts beyond the first, summed over all requests. */
  retries: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/**
 * Issues `requests` unique incr requests on one key from `clients`
 * concurrent clients (each its own VmClient and session) and measures each request's latency (all attempts).
 */
export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  const key = opts.key ?? 'counter';
  const latencies: number[] = [];
  const values: number[] = [];
  const errors: string[] = [];
  let issued = 0;
  let retries = 0;
  let unknown = 0;
  const t0 = performance.now();
  const worker = async () => {
    const { requests: _r, clients: _c, key: _k, onAnswer: _o, ...clientOpts } = opts;
    const client = new VmClient({ ...clientOpts, connections: 1 });
    try {
      while (issued < opts.requests) {
        issued++;
        const s = performance.now();
        try {
          const a = await client.incr(key);
          latencies.push(performance.now() - s);
          values.push(Number(a.value));
          retries += a.attempts - 1;
          opts.onAnswer?.(values.length);
        } catch (err) {
          errors.push((err as Error).message);
          if ((err as { outcome?: string }).outcome !== 'not-applied') unknown++;
        }
      }
    } finally {
      await client.close();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.clients) }, () => worker()));
  const elapsedMs = performance.now() - t0;
  const sorted = [...latencies].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    requests: opts.requests,
    answered: values.length,
    failed: errors.length,
    unknown,
    errors: errors.slice(0, 10),
    values,
    latencyMs: {
      p50: r(percentile(sorted, 50)),
      p90: r(percentile(sorted, 90)),
      p99: r(percentile(sorted, 99)),
      max: r(sorted.at(-1) ?? 0),
      mean: r(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1)),
    },
    elapsedMs: r(elapsedMs),
    throughput: r((values.length * 1000) / (elapsedMs || 1)),
    retries,
  };
}
