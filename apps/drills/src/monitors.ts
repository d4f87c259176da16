/**
 * Reads the invariant monitors (`mr_invariant_violations_total`,
 * `ft_invariant_violations_total`) from every part's /metrics while the drill
 * runs, keeping the highest value per process and invariant: a process the
 * drill kills keeps what it showed before it died.
 */
import { request } from 'undici';
import { checkMonitors, parseMonitors, type CheckResult, type MonitorReading } from '@mr/chaos';
import { sleep } from './parts.ts';

const SCRAPE_MS = 250;

export class MonitorScraper {
  readonly #targets = new Map<string, string>();
  readonly #max = new Map<string, MonitorReading>();
  #scrapes = 0;
  #running = false;
  #loop: Promise<void> | undefined;

  /** Scrapes `url`/metrics as `process` from now on (a restarted process is a new name). */
  watch(process: string, url: string): void {
    this.#targets.set(process, url);
  }

  forget(process: string): void {
    this.#targets.delete(process);
  }

  start(): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        await this.scrapeAll();
        await sleep(SCRAPE_MS);
      }
    })();
  }

  /** Stops after one last scrape of every process still watched. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
    await this.scrapeAll();
  }

  async scrapeAll(): Promise<void> {
    await Promise.all([...this.#targets].map(([p, url]) => this.#scrape(p, url)));
  }

  async #scrape(process: string, url: string): Promise<void> {
    let text: string;
    try {
      const r = await request(`${url}/metrics`, { headersTimeout: 1000, bodyTimeout: 1000 });
      text = await r.body.text();
      if (r.statusCode !== 200) return;
    } catch {
      return; // down or stalled: what it showed before is kept
    }
    this.#scrapes++;
    for (const m of parseMonitors(text)) {
      const key = `${process}\n${m.metric}\n${m.invariant}`;
      const prev = this.#max.get(key);
      if (!prev || m.value > prev.value) this.#max.set(key, { process, ...m });
    }
  }

  verdict(): CheckResult {
    return checkMonitors([...this.#max.values()], this.#scrapes);
  }
}
