/**
 * Checks of deploy/'s Grafana dashboards against the Prometheus config and
 * against what the services really export (their scraped /metrics pages).
 * Every function returns a list of problems, empty when all is well.
 */
import { familyOf, legendLabels, parsePromQL, type Exposition, type Selector } from './promql.ts';

/** Series Prometheus makes itself for every target: not exported by the services. */
export const PROMETHEUS_SERIES = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added']);
/** Labels Prometheus attaches to every scraped series (target labels). */
const TARGET_LABELS = ['job', 'instance'];

export interface DashQuery {
  dashboard: string;
  where: string;
  expr: string;
  legend?: string | undefined;
  /** For label_values(selector, label) variables: the label. */
  label?: string | undefined;
}

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: { refId?: string; expr?: string; legendFormat?: string; datasource?: { type?: string; uid?: string } }[];
  panels?: Panel[];
}

export interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: { list?: { name?: string; type?: string; query?: unknown; definition?: string; datasource?: { uid?: string } }[] };
}

/** What every panel, target and query variable names as its datasource: the dashboard's own `datasource` variable. */
export const DATASOURCE_REF = '${datasource}';

function allPanels(panels: Panel[] = []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels)]);
}

/** Every PromQL expression of a dashboard: panel targets and label_values() variables. */
export function dashboardQueries(name: string, d: Dashboard): DashQuery[] {
  const out: DashQuery[] = [];
  for (const p of allPanels(d.panels)) {
    for (const t of p.targets ?? []) {
      if (t.expr !== undefined) out.push({ dashboard: name, where: `panel "${p.title}" target ${t.refId}`, expr: t.expr, legend: t.legendFormat });
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query ?? '';
    const m = /^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q);
    if (!m) {
      out.push({ dashboard: name, where: `variable $${v.name}`, expr: q });
      continue;
    }
    out.push({ dashboard: name, where: `variable $${v.name}`, expr: m[1]!, label: m[2]! });
  }
  return out;
}

/**
 * Structure Grafana needs to load and run the dashboard against any
 * Prometheus datasource: a `datasource` variable of type prometheus (so an
 * import into an existing Grafana picks the datasource there), which every
 * panel, target and query variable refers to as `${datasource}`; no uid of a
 * particular Grafana is hard-coded.
 */
export function checkDashboardShape(name: string, d: Dashboard): string[] {
  const problems: string[] = [];
  const datasourceUid = DATASOURCE_REF;
  const dsVar = d.templating?.list?.find((v) => v.name === 'datasource');
  if (dsVar?.type !== 'datasource' || dsVar.query !== 'prometheus') problems.push(`${name}: no "datasource" variable of type datasource, query prometheus`);
  if (typeof d.uid !== 'string' || !/^[a-zA-Z0-9_-]{1,40}$/.test(d.uid)) problems.push(`${name}: bad or missing uid`);
  if (typeof d.title !== 'string' || !d.title) problems.push(`${name}: missing title`);
  if (typeof d.schemaVersion !== 'number' || d.schemaVersion < 30) problems.push(`${name}: schemaVersion ${d.schemaVersion} (want a number >= 30)`);
  const panels = allPanels(d.panels);
  if (panels.length === 0) problems.push(`${name}: no panels`);
  const ids = new Set<number>();
  for (const p of panels) {
    const here = `${name}: panel "${p.title}"`;
    if (typeof p.id !== 'number') problems.push(`${here}: no numeric id`);
    else if (ids.has(p.id)) problems.push(`${here}: duplicate id ${p.id}`);
    else ids.add(p.id);
    const g = p.gridPos;
    if (!g || g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1 || g.y < 0) problems.push(`${here}: bad gridPos ${JSON.stringify(g)}`);
    if (p.type === 'row') continue;
    if (!p.type) problems.push(`${here}: no type`);
    if (!p.targets?.length) problems.push(`${here}: no targets`);
    if (p.datasource?.uid !== datasourceUid) problems.push(`${here}: datasource uid ${p.datasource?.uid} (provisioned: ${datasourceUid})`);
    const refIds = new Set<string>();
    for (const t of p.targets ?? []) {
      if (!t.refId || refIds.has(t.refId)) problems.push(`${here}: missing or duplicate refId ${t.refId}`);
      refIds.add(t.refId ?? '');
      if (!t.expr?.trim()) problems.push(`${here}: target ${t.refId} has no expr`);
      if (t.datasource && t.datasource.uid !== datasourceUid) problems.push(`${here}: target ${t.refId} datasource uid ${t.datasource.uid}`);
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type === 'query' && v.datasource?.uid !== datasourceUid) problems.push(`${name}: variable $${v.name} datasource uid ${v.datasource?.uid}`);
  }
  return problems;
}

/** The jobs a selector's job matcher picks out of the configured jobs. */
function selectedJobs(sel: Selector, jobs: string[]): string[] | string {
  const m = sel.matchers.filter((x) => x.label === 'job');
  if (m.length === 0) return `selector ${sel.metric} has no job matcher (every query names its Prometheus job)`;
  let picked = jobs;
  for (const x of m) {
    const re = new RegExp(`^(?:${x.value})$`);
    const hit = (j: string) => (x.op === '=' ? j === x.value : x.op === '!=' ? j !== x.value : x.op === '=~' ? re.test(j) : !re.test(j));
    if (x.op === '=' && !jobs.includes(x.value)) return `selector ${sel.metric} names job "${x.value}", which prometheus.yml does not scrape`;
    picked = picked.filter(hit);
  }
  if (picked.length === 0) return `selector ${sel.metric}: job matcher matches no job of prometheus.yml`;
  return picked;
}

/**
 * Every metric name a query uses must be a sample name that every job its
 * selector picks really exported (so a histogram is queried as _bucket/_sum/
 * _count, a counter with its _total); every label a matcher, a grouping
 * clause, a legend or label_values() names must be on those samples.
 */
export function checkQueries(queries: DashQuery[], jobs: string[], exported: Map<string, Exposition>): string[] {
  const problems: string[] = [];
  for (const q of queries) {
    const here = `${q.dashboard}: ${q.where}`;
    let refs;
    try {
      refs = parsePromQL(q.expr);
    } catch (err) {
      problems.push(`${here}: ${(err as Error).message}`);
      continue;
    }
    if (refs.selectors.length === 0) problems.push(`${here}: no metric in "${q.expr}"`);
    const available = new Set<string>(TARGET_LABELS);
    for (const sel of refs.selectors) {
      const picked = selectedJobs(sel, jobs);
      if (typeof picked === 'string') {
        problems.push(`${here}: ${picked}`);
        continue;
      }
      const labels = new Set<string>(TARGET_LABELS);
      if (!PROMETHEUS_SERIES.has(sel.metric)) {
        for (const job of picked) {
          const exp = exported.get(job);
          const seen = exp?.samples.get(sel.metric);
          if (!seen) {
            const fam = exp && familyOf(sel.metric, exp.types);
            const hint = fam ? ` (${fam.family} is a ${fam.type}${fam.type === 'histogram' ? ': query _bucket, _sum or _count' : ''} with no such sample)` : '';
            problems.push(`${here}: metric ${sel.metric} is not exported by job ${job}${hint}`);
            continue;
          }
          for (const l of seen) labels.add(l);
        }
      }
      for (const m of sel.matchers) {
        if (!labels.has(m.label)) problems.push(`${here}: ${sel.metric} has no label "${m.label}" (matcher ${m.label}${m.op}"${m.value}")`);
      }
      for (const l of labels) available.add(l);
    }
    for (const l of refs.groupingLabels) if (!available.has(l)) problems.push(`${here}: grouping label "${l}" is on none of its metrics`);
    for (const l of legendLabels(q.legend)) if (!available.has(l)) problems.push(`${here}: legend label "${l}" is on none of its metrics`);
    if (q.label && !available.has(q.label)) problems.push(`${here}: label_values label "${q.label}" is on none of its metrics`);
  }
  return problems;
}
