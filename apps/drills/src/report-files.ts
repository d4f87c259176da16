import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseReport, renderMarkdown, type DrillReport } from '@mr/chaos';

/** Writes DIR/<drill>-seed<seed>-<time>.json and .md; returns both paths. */
export function writeReport(report: DrillReport & { dir?: string }, outDir: string): { json: string; md: string } {
  mkdirSync(outDir, { recursive: true });
  const { dir: _dir, ...r } = report;
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const base = join(outDir, `${r.schedule.drill}-seed${r.schedule.seed}-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(r, null, 1)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(r));
  return { json: `${base}.json`, md: `${base}.md` };
}

/** Reads and validates a report file (throws DRILL_ERR_BAD_REPORT, or the fs error). */
export function readReport(file: string): DrillReport {
  let json: unknown;
  const text = readFileSync(file, 'utf8');
  try {
    json = JSON.parse(text);
  } catch (err) {
    return parseReport({ parseError: (err as Error).message });
  }
  return parseReport(json);
}
