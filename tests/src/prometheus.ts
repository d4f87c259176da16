/**
 * Debian's Prometheus as a test fixture: started on a free port with a temp
 * TSDB, deploy/prometheus/prometheus.yml with its targets swapped for the
 * test's (job names and everything else kept), its alert rules loaded, 1 s
 * scrapes and rule evaluations; killed when the test ends. And helpers to
 * query its HTTP API.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { request } from 'undici';
import { sleep } from './procs.ts';
import { freePort, until } from './vm-cluster.ts';
import { substituteGrafanaVars } from './promql.ts';
import type { DashQuery } from './deploy-check.ts';

export const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));

export interface PromConfig {
  global?: Record<string, string>;
  rule_files?: string[];
  scrape_configs: { job_name: string; metrics_path?: string; scheme?: string; authorization?: unknown; static_configs?: { targets: string[] }[] }[];
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAnswer {
  status: string;
  error?: string;
  data?: { resultType?: string; result: PromSample[] };
}

export interface PromRule {
  name: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  state?: 'inactive' | 'pending' | 'firing';
  alerts?: { labels: Record<string, string>; state: string; value: string }[];
}

export interface Prometheus {
  url: string;
  query(q: string): Promise<PromAnswer>;
  /** The value of each series of an instant query, keyed by the given label (or '' when it has none). */
  values(q: string, by?: string): Promise<Map<string, number>>;
  rules(): Promise<PromRule[]>;
}

export function hasBinary(name: string): boolean {
  return !spawnSync(name, ['--version'], { encoding: 'utf8' }).error;
}

export function deployYaml<T>(rel: string): T {
  return parseYaml(readFileSync(join(DEPLOY, rel), 'utf8')) as T;
}

/** Starts Prometheus scraping `targets` (job name -> base URLs) with deploy/'s config and rules. */
export async function startPrometheus(t: { after(fn: () => unknown): void }, targets: Record<string, string[]>): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'mr-prom-'));
  const cfg = deployYaml<PromConfig>('prometheus/prometheus.yml');
  cfg.global = { ...cfg.global, scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' };
  cfg.rule_files = (cfg.rule_files ?? []).map((f) => join(DEPLOY, 'prometheus', f));
  for (const s of cfg.scrape_configs) s.static_configs = [{ targets: (targets[s.job_name] ?? []).map((u) => new URL(u).host) }];
  cfg.scrape_configs = cfg.scrape_configs.filter((s) => s.static_configs![0]!.targets.length > 0);
  writeFileSync(join(dir, 'prometheus.yml'), stringifyYaml(cfg));
  const port = await freePort();
  const proc = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
  const exited = new Promise<void>((r) => proc.on('close', () => r()));
  t.after(async () => {
    proc.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  await until('prometheus to be ready', 15_000, async () => {
    if (proc.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`);
    try {
      const r = await request(`${base}/-/ready`);
      await r.body.text();
      return r.statusCode === 200;
    } catch {
      return false;
    }
  });
  const query = async (q: string): Promise<PromAnswer> => {
    const r = await request(`${base}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ query: q }).toString() });
    return (await r.body.json()) as PromAnswer;
  };
  return {
    url: base,
    query,
    async values(q, by) {
      const a = await query(q);
      if (a.status !== 'success') throw new Error(`${q}: ${a.error}`);
      return new Map((a.data?.result ?? []).map((s) => [by ? s.metric[by] ?? '' : '', Number(s.value[1])]));
    },
    async rules() {
      const r = await request(`${base}/api/v1/rules`);
      const body = (await r.body.json()) as { data: { groups: { rules: PromRule[] }[] } };
      return body.data.groups.flatMap((g) => g.rules);
    },
  };
}

/**
 * Runs every query through Prometheus until each one that must have series
 * has them (the first scrapes take a few seconds to show), or the deadline.
 * Returns the problems: evaluation errors, then queries still without series.
 */
export async function evaluateAll(query: (q: string) => Promise<PromAnswer>, queries: DashQuery[], mayBeEmpty: (q: DashQuery) => boolean, ms = 20_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const last = await Promise.all(queries.map(async (q) => ({ q, r: await query(substituteGrafanaVars(q.expr)) })));
    const errors = last.filter((x) => x.r.status !== 'success').map((x) => `${x.q.dashboard}: ${x.q.where}: ${x.r.error}`);
    if (errors.length) return errors;
    const empty = last.filter((x) => !mayBeEmpty(x.q) && !(x.r.data?.result.length ?? 0)).map((x) => `${x.q.dashboard}: ${x.q.where}: no series for ${x.q.expr}`);
    if (empty.length === 0 || Date.now() > deadline) return empty;
    await sleep(250);
  }
}
