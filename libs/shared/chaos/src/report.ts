/**
 * A drill's report: the schedule it carried out (enough to replay it), what
 * happened when, the invariants with their verdicts, and the recovery times.
 * Written as JSON (the record) and Markdown (for people), both from here.
 */
import { createError } from '@mr/errors';
import { INVARIANTS } from './catalog.ts';
import { describeFault, SCHEDULE_VERSION, type Schedule } from './schedule.ts';
import type { Recovery } from './checks.ts';

export const ERR_BAD_REPORT = createError<[string]>('DRILL_ERR_BAD_REPORT', 'not a drill report: %s', 400, { retryable: false });

export interface TimelineEntry {
  /** ms after the workload started. */
  atMs: number;
  kind: 'fault' | 'event' | 'skipped';
  text: string;
}

export interface InvariantVerdict {
  id: string;
  ok: boolean;
  detail: string;
}

export interface DrillReport {
  kind: 'mr-drill-report';
  schedule: Schedule;
  /** Wall-clock start (ISO 8601), for people only. */
  startedAt: string;
  durationMs: number;
  /** passed: every invariant held; failed: one did not; error: the drill could not run to the end. */
  outcome: 'passed' | 'failed' | 'error';
  error?: string;
  timeline: TimelineEntry[];
  invariants: InvariantVerdict[];
  recoveries: Recovery[];
  stats: Record<string, number | string>;
  /** Set when this run replayed an earlier report. */
  replayOf?: string;
  /** The VM drills' client history (KvOperation-shaped records), for the linearizability check and later study. */
  history?: unknown[];
}

/**
 * passed: every invariant held; for a break-the-rule drill (`expectBroken`), at least one of the
 * expected invariants broke (the anomaly was caught) and every other one held.
 */
export function outcomeOf(invariants: readonly InvariantVerdict[], error?: string, expectBroken?: readonly string[], mayBreak: readonly string[] = []): DrillReport['outcome'] {
  if (error) return 'error';
  if (!expectBroken?.length) return invariants.every((i) => i.ok) ? 'passed' : 'failed';
  const caught = invariants.some((i) => !i.ok && expectBroken.includes(i.id));
  const others = invariants.every((i) => i.ok || expectBroken.includes(i.id) || mayBreak.includes(i.id));
  return caught && others ? 'passed' : 'failed';
}

/** Validates a parsed report file enough to replay or print it. */
export function parseReport(json: unknown): DrillReport {
  const r = json as Partial<DrillReport> | null;
  if (typeof r !== 'object' || r === null || r.kind !== 'mr-drill-report') throw ERR_BAD_REPORT('missing "kind": "mr-drill-report"');
  const s = r.schedule;
  if (!s || typeof s !== 'object') throw ERR_BAD_REPORT('missing "schedule"');
  if (s.version !== SCHEDULE_VERSION) throw ERR_BAD_REPORT(`schedule version ${String(s.version)}, this build replays version ${SCHEDULE_VERSION}`);
  if (typeof s.drill !== 'string' || !Number.isInteger(s.seed) || !Array.isArray(s.faults) || typeof s.workload !== 'object') {
    throw ERR_BAD_REPORT('schedule needs drill, seed, workload and faults');
  }
  for (const f of s.faults) {
    if (!Number.isFinite(f?.atMs) || f.atMs < 0 || typeof f.action?.type !== 'string') throw ERR_BAD_REPORT(`bad fault ${JSON.stringify(f)}`);
  }
  if (!Array.isArray(r.invariants) || !Array.isArray(r.timeline)) throw ERR_BAD_REPORT('missing "invariants" or "timeline"');
  return r as DrillReport;
}

const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Markdown for people; `svgFile`: the timeline picture written beside it, linked from here. */
export function renderMarkdown(r: DrillReport, svgFile?: string): string {
  const s = r.schedule;
  const out: string[] = [];
  out.push(`# Drill ${s.drill}${s.control ? ' (control: rule on)' : ''}: ${r.outcome.toUpperCase()}`, '');
  out.push(`- seed ${s.seed}, scale ${s.scale}, started ${r.startedAt}, ran ${(r.durationMs / 1000).toFixed(1)} s`);
  out.push(`- replay: \`mr drill replay <this report's .json>\` or \`mr drill run ${s.drill} --seed ${s.seed}${s.scale === 'short' ? ' --short' : ''}\``);
  if (r.replayOf) out.push(`- replay of ${r.replayOf}`);
  if (s.control) out.push('- control run: the break-the-rule drill\'s faults with the rule ON; every invariant must hold');
  if (r.error) out.push(`- error: ${r.error}`);
  if (s.expectBroken?.length) {
    const caught = r.invariants.filter((i) => !i.ok && s.expectBroken!.includes(i.id)).map((i) => i.id);
    out.push(`- break-the-rule drill: passes when one of ${s.expectBroken.join(', ')} breaks${s.mayBreak?.length ? ` (${s.mayBreak.join(', ')} may break too, as consequences)` : ''}; ${caught.length ? `the anomaly was caught by ${caught.join(', ')}` : 'the anomaly was NOT seen this time'}`);
  }
  out.push('', '## Invariants', '', '| invariant | held | detail |', '|---|---|---|');
  for (const i of r.invariants) out.push(`| ${i.id}: ${esc(INVARIANTS[i.id] ?? '')} | ${i.ok ? 'yes' : '**NO**'} | ${esc(i.detail)} |`);
  out.push('', '## Recovery', '');
  if (r.recoveries.length === 0) out.push('none measured');
  else {
    out.push('| fault | recovered when | after |', '|---|---|---|');
    for (const x of r.recoveries) out.push(`| ${esc(x.fault)} | ${esc(x.what)} | ${x.recoveredMs === null ? 'never' : `${x.recoveredMs} ms`} |`);
  }
  if (svgFile) out.push('', `![timeline](${svgFile})`);
  out.push('', '## Schedule', '');
  for (const f of s.faults) out.push(`- ${describeFault(f)}`);
  out.push('', '## Timeline', '', '```');
  for (const e of r.timeline) out.push(`${`+${e.atMs}ms`.padStart(9)} ${e.kind.padEnd(7)} ${e.text}`);
  out.push('```', '', '## Workload', '', '```json', JSON.stringify(s.workload, null, 2), '```', '');
  if (Object.keys(r.stats).length) {
    out.push('## Stats', '');
    for (const [k, v] of Object.entries(r.stats)) out.push(`- ${k}: ${v}`);
    out.push('');
  }
  return out.join('\n');
}
