/**
 * The report's timeline as a small SVG: time across; the faults as red
 * lines, each recovery as a shaded span from its fault; the drill's events
 * as ticks; and, for the VM drills, client answers per 250 ms as bars.
 */
import type { DrillReport } from './report.ts';

const W = 960;
const LEFT = 40;
const RIGHT = 20;
const BUCKET_MS = 250;

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderSvg(r: DrillReport): string {
  const answers = (r.history ?? [])
    .map((h) => (h as { response?: unknown }).response)
    .filter((t): t is number => typeof t === 'number');
  const endMs = Math.max(1000, ...r.timeline.map((e) => e.atMs), ...answers);
  const x = (ms: number): number => LEFT + (Math.max(0, ms) / endMs) * (W - LEFT - RIGHT);
  const out: string[] = [];
  const faults = r.timeline.filter((e) => e.kind === 'fault');
  const events = r.timeline.filter((e) => e.kind !== 'fault');
  const barsTop = 40;
  const barsH = answers.length ? 80 : 0;
  const rowsTop = barsTop + barsH + 20;
  const H = rowsTop + 14 * (faults.length + events.length) + 40;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<text x="${LEFT}" y="18" font-size="14">${xml(`${r.schedule.drill} seed ${r.schedule.seed} (${r.schedule.scale}): ${r.outcome}`)}</text>`);
  // Recoveries: a span from the fault to recovery.
  for (const rec of r.recoveries) {
    const m = /^\+(\d+)ms/.exec(rec.fault);
    if (!m || rec.recoveredMs === null) continue;
    const at = Number(m[1]);
    out.push(`<rect x="${x(at).toFixed(1)}" y="${barsTop}" width="${Math.max(1, x(at + rec.recoveredMs) - x(at)).toFixed(1)}" height="${H - barsTop - 30}" fill="#f4c7c3" opacity="0.5"><title>${xml(`${rec.fault}: ${rec.what} after ${rec.recoveredMs} ms`)}</title></rect>`);
  }
  // Throughput: answers per bucket.
  if (answers.length) {
    const n = Math.ceil(endMs / BUCKET_MS) + 1;
    const counts = new Array<number>(n).fill(0);
    for (const t of answers) counts[Math.floor(t / BUCKET_MS)]!++;
    const max = Math.max(1, ...counts);
    counts.forEach((c, i) => {
      if (!c) return;
      const h = (c / max) * barsH;
      out.push(`<rect x="${x(i * BUCKET_MS).toFixed(1)}" y="${(barsTop + barsH - h).toFixed(1)}" width="${Math.max(1, x((i + 1) * BUCKET_MS) - x(i * BUCKET_MS) - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#4a90d9"><title>${c} answers</title></rect>`);
    });
    out.push(`<text x="2" y="${barsTop + 10}">${max}/${BUCKET_MS}ms</text>`);
  }
  let y = rowsTop;
  for (const f of faults) {
    y += 14;
    out.push(`<line x1="${x(f.atMs).toFixed(1)}" y1="${barsTop}" x2="${x(f.atMs).toFixed(1)}" y2="${y}" stroke="#d0021b"/>`);
    out.push(`<text x="${(x(f.atMs) + 3).toFixed(1)}" y="${y}" fill="#d0021b">${xml(f.text.slice(0, 110))}</text>`);
  }
  for (const e of events) {
    y += 14;
    out.push(`<line x1="${x(e.atMs).toFixed(1)}" y1="${y - 10}" x2="${x(e.atMs).toFixed(1)}" y2="${y + 2}" stroke="#555"/>`);
    out.push(`<text x="${(x(e.atMs) + 3).toFixed(1)}" y="${y}" fill="${e.kind === 'skipped' ? '#999' : '#333'}">${xml(e.text.slice(0, 110))}</text>`);
  }
  // Time axis, one tick a second.
  const axis = H - 20;
  out.push(`<line x1="${LEFT}" y1="${axis}" x2="${W - RIGHT}" y2="${axis}" stroke="#000"/>`);
  const step = endMs > 30_000 ? 5000 : 1000;
  for (let t = 0; t <= endMs; t += step) out.push(`<text x="${x(t).toFixed(1)}" y="${axis + 14}" text-anchor="middle">${t / 1000}s</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
