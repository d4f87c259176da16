import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseReport, renderMarkdown, renderSvg, type DrillReport } from '@mr/chaos';

/** Writes DIR/<drill>-seed<seed>-<time>.json, .md and .svg (the timeline); returns their paths. */
export function writeReport(report: DrillReport & { dir?: string }, outDir: string): { json: string; md: string; svg: string } {
  mkdirSync(outDir, { recursive: true });
  const { dir: _dir, ...r } = report;
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const base = join(outDir, `${r.schedule.drill}-seed${r.schedule.seed}-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(r, null, 1)}\n`);
  writeFileSync(`${base}.svg`, renderSvg(r));
  writeFileSync(`${base}.md`, renderMarkdown(r, `${basename(base)}.svg`));
  return { json: `${base}.json`, md: `${base}.md`, svg: `${base}.svg` };
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
