/**
 * Scrapes the services' /metrics at an interval and keeps, for charts, a
 * bounded ring of points (retentionPoints per series; README "Limits"), each
 * point a rate or a gauge computed from one scrape round. The latest parsed
 * exposition of each target is kept too (for the invariant monitors and the
 * VM view), capped at maxSamples samples and maxBodyBytes bytes.
 */
import { request, type Dispatcher } from 'undici';
import { parsePromText, sumOf, type Sample } from './prom-text.ts';

export interface ScrapeTarget {
  /** What it is: 'coordinator', 'vm-node', 'storage'. */
  job: string;
  /** Base URL; /metrics is appended. */
  url: string;
  /** Its name in the UI (e.g. node a). */
  name: string;
}

export interface TargetState {
  target: ScrapeTarget;
  up: boolean;
  lastScrapeAt?: number;
  lastError?: string;
  durationMs?: number;
  samples: Sample[];
}

/** A chart series: a rate of a counter family, or a gauge, summed over targets of one job. */
export interface SeriesDef {
  id: string;
  label: string;
  unit: string;
  job: string;
  metric: string;
  kind: 'rate' | 'gauge' | 'max';
  match?: Record<string, string>;
}

export const SERIES: SeriesDef[] = [
  { id: 'tasks-committed', label: 'tasks committed', unit: '/s', job: 'coordinator', metric: 'mr_tasks_total', kind: 'rate', match: { outcome: 'committed' } },
  { id: 'tasks-reissued', label: 'tasks re-issued', unit: '/s', job: 'coordinator', metric: 'mr_tasks_total', kind: 'rate', match: { outcome: 'reissued' } },
  { id: 'tasks-failed', label: 'task attempts failed', unit: '/s', job: 'coordinator', metric: 'mr_tasks_total', kind: 'rate', match: { outcome: 'failed' } },
  { id: 'vm-requests', label: 'VM client requests', unit: '/s', job: 'vm-node', metric: 'ft_client_requests_total', kind: 'rate' },
  { id: 'vm-log-bytes', label: 'log bytes sent', unit: 'B/s', job: 'vm-node', metric: 'ft_log_bytes_total', kind: 'rate', match: { direction: 'sent' } },
  { id: 'vm-lag', label: 'backup lag', unit: 'instructions', job: 'vm-node', metric: 'ft_backup_lag_instructions', kind: 'max' },
  { id: 'vm-held', label: 'outputs held', unit: '', job: 'vm-node', metric: 'ft_outputs_held', kind: 'gauge' },
];

export interface ScraperOptions {
  targets: ScrapeTarget[];
  intervalMs: number;
  retentionPoints: number;
  token?: string | undefined;
  dispatcher?: Dispatcher;
  timeoutMs?: number;
  maxBodyBytes?: number;
  maxSamples?: number;
}

export class Scraper {
  readonly opts: ScraperOptions;
  readonly states: TargetState[];
  /** Ring of points: times (ms) and, per series id, values (null: no data). */
  times: number[] = [];
  values: Record<string, (number | null)[]> = {};
  /** Previous counter totals per target and series (for rates). */
  #prev = new Map<string, { t: number; v: number }>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  rounds = 0;

  constructor(opts: ScraperOptions) {
    if (!(opts.retentionPoints >= 2)) throw new Error('scraper: retentionPoints must be at least 2');
    this.opts = opts;
    this.states = opts.targets.map((target) => ({ target, up: false, samples: [] }));
    for (const s of SERIES) this.values[s.id] = [];
  }

  start(onRound?: () => void): void {
    const tick = async () => {
      if (this.#running) return;
      this.#running = true;
      try {
        await this.scrapeOnce();
        onRound?.();
      } finally {
        this.#running = false;
      }
    };
    void tick();
    this.#timer = setInterval(() => void tick(), this.opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  async scrapeOnce(now = Date.now()): Promise<void> {
    await Promise.all(this.states.map((s) => this.#scrape(s)));
    this.record(now);
  }

  async #scrape(s: TargetState): Promise<void> {
    const started = Date.now();
    const timeout = this.opts.timeoutMs ?? 2000;
    const maxBytes = this.opts.maxBodyBytes ?? 4 * 1024 * 1024;
    try {
      const r = await request(`${s.target.url.replace(/\/+$/, '')}/metrics`, {
        headers: this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {},
        headersTimeout: timeout,
        bodyTimeout: timeout,
        ...(this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : {}),
      });
      if (r.statusCode !== 200) {
        await r.body.dump();
        throw new Error(`HTTP ${r.statusCode}`);
      }
      let size = 0;
      const chunks: Buffer[] = [];
      for await (const c of r.body) {
        size += (c as Buffer).length;
        if (size > maxBytes) {
          r.body.destroy();
          throw new Error(`more than ${maxBytes} bytes`);
        }
        chunks.push(c as Buffer);
      }
      s.samples = parsePromText(Buffer.concat(chunks).toString('utf8'), this.opts.maxSamples ?? 50_000).samples;
      s.up = true;
      delete s.lastError;
    } catch (err) {
      s.up = false;
      s.samples = [];
      s.lastError = (err as Error).message;
    }
    s.lastScrapeAt = Date.now();
    s.durationMs = s.lastScrapeAt - started;
  }

  /** Adds one point per series from the targets' latest samples (exported for tests). */
  record(now: number): void {
    this.rounds++;
    this.times.push(now);
    for (const def of SERIES) {
      let total: number | null = null;
      for (const s of this.states) {
        if (s.target.job !== def.job || !s.up) continue;
        const v = sumOf(s.samples, def.metric, def.match);
        if (v === undefined) continue;
        if (def.kind === 'rate') {
          const key = `${s.target.url}|${def.id}`;
          const prev = this.#prev.get(key);
          this.#prev.set(key, { t: now, v });
          // A counter that went down was reset (the process restarted): no rate for this round.
          if (!prev || v < prev.v || now <= prev.t) continue;
          total = (total ?? 0) + ((v - prev.v) * 1000) / (now - prev.t);
        } else if (def.kind === 'max') total = Math.max(total ?? -Infinity, v);
        else total = (total ?? 0) + v;
      }
      this.values[def.id]!.push(total);
    }
    const over = this.times.length - this.opts.retentionPoints;
    if (over > 0) {
      this.times.splice(0, over);
      for (const id of Object.keys(this.values)) this.values[id]!.splice(0, over);
    }
  }

  /** Samples of every target whose name matches `re` (invariant monitors). */
  matching(re: RegExp): { target: string; job: string; name: string; labels: Record<string, string>; value: number }[] {
    const out = [];
    for (const s of this.states) for (const x of s.samples) if (re.test(x.name)) out.push({ target: s.target.name, job: s.target.job, name: x.name, labels: x.labels, value: x.value });
    return out;
  }
}
