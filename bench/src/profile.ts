/**
 * CPU profiles for the MapReduce benchmarks (`npm run bench -- --cpu-prof ...`):
 * V8 .cpuprofile files (open them in Chrome DevTools' Performance panel or
 * speedscope), a flame graph of each as SVG (drawn here, no other tool), and
 * a short summary of the functions with the most self time.
 *
 * Spawned processes (coordinator, workers) get node's `--cpu-prof` flags and
 * must end cleanly (SIGTERM) for V8 to write their profile; each task thread
 * writes its own. In-process work is profiled through the inspector.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, to shorten script URLs in reports. */
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** Where profiles go: bench/out/profiles/<bench>/. */
export const PROFILE_ROOT = resolve(fileURLToPath(new URL('../out/profiles', import.meta.url)));

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** A profile directory for one benchmark (emptied of older profiles). */
export function profileDir(bench: string): string {
  const dir = join(PROFILE_ROOT, bench);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (/\.(cpuprofile|svg)$/.test(f)) rmSync(join(dir, f), { force: true });
  return dir;
}

/**
 * node flags that make a spawned process write its CPU profile (and each of
 * its threads' own) into `dir` on a clean exit, named CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile.
 */
export function cpuProfArgs(dir: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '500'];
}

/** Now on the clock V8's profiles use (CLOCK_MONOTONIC, µs): marks a window of interest across processes. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** A window [fromUs, toUs] of the monotonic clock. */
export interface Window {
  fromUs: number;
  toUs: number;
}

/** Keeps the samples taken inside `w` (start-up and shutdown left out). */
export function trim(p: CpuProfile, w: Window | undefined): CpuProfile {
  if (!w || !p.samples || !p.timeDeltas) return p;
  const samples: number[] = [];
  const deltas: number[] = [];
  let t = p.startTime;
  let last = w.fromUs;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (t < w.fromUs || t > w.toUs) continue;
    samples.push(p.samples[i]!);
    deltas.push(t - last);
    last = t;
  }
  return { ...p, samples, timeDeltas: deltas, startTime: w.fromUs, endTime: Math.min(w.toUs, p.endTime) };
}

/** Profiles `fn` in this thread through the inspector and writes `<dir>/<name>.cpuprofile`. */
export async function profileInProcess<T>(dir: string, name: string, fn: () => Promise<T>): Promise<{ result: T; file: string }> {
  const s = new Session();
  s.connect();
  await s.post('Profiler.enable');
  await s.post('Profiler.setSamplingInterval', { interval: 500 });
  await s.post('Profiler.start');
  const file = join(dir, `${name}.cpuprofile`);
  try {
    return { result: await fn(), file };
  } finally {
    const { profile } = (await s.post('Profiler.stop')) as { profile: CpuProfile };
    writeFileSync(file, JSON.stringify(profile));
    s.disconnect();
  }
}

/** Self and total sampled time of each node (µs); total counts every node under it. */
function times(p: CpuProfile): { self: Map<number, number>; total: Map<number, number>; parent: Map<number, number> } {
  const self = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  // A sample's time is the gap to the next sample (the last one gets the mean).
  const mean = samples.length ? (p.endTime - p.startTime) / samples.length : 0;
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < deltas.length ? Math.max(0, deltas[i + 1]!) : mean;
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + dt);
  }
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = new Map<number, number>();
  const visit = (id: number): number => {
    const n = byId.get(id)!;
    let t = self.get(id) ?? 0;
    for (const c of n.children ?? []) t += visit(c);
    total.set(id, t);
    return t;
  };
  const root = p.nodes.find((n) => !parent.has(n.id));
  if (root) visit(root.id);
  return { self, total, parent };
}

function where(cf: CallFrame): string {
  if (!cf.url) return '';
  let u = cf.url.startsWith('file://') ? fileURLToPath(cf.url) : cf.url;
  if (u.startsWith(ROOT)) u = relative(ROOT, u);
  u = u.replace(/^.*node_modules\//, '~/');
  return `${u}:${cf.lineNumber + 1}`;
}

function label(cf: CallFrame): string {
  const name = cf.functionName || '(anonymous)';
  const at = where(cf);
  return at ? `${name} ${at}` : name;
}

const QUIET = new Set(['(idle)', '(root)']);

export interface TopEntry {
  fn: string;
  selfMs: number;
  selfPct: number;
  totalPct: number;
}

/**
 * The functions with the most self time (idle excluded from the percentages),
 * merged over every call site; totalPct counts a function once per stack.
 */
export function topFunctions(p: CpuProfile, n = 12): { busyMs: number; top: TopEntry[] } {
  const { self, total, parent } = times(p);
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const selfBy = new Map<string, number>();
  const totalBy = new Map<string, number>();
  let busy = 0;
  for (const node of p.nodes) {
    const key = label(node.callFrame);
    if (QUIET.has(node.callFrame.functionName)) continue;
    const s = self.get(node.id) ?? 0;
    busy += s;
    selfBy.set(key, (selfBy.get(key) ?? 0) + s);
    // Count the node's total only if no ancestor is the same function (recursion).
    let up = parent.get(node.id);
    let nested = false;
    while (up !== undefined) {
      if (label(byId.get(up)!.callFrame) === key) {
        nested = true;
        break;
      }
      up = parent.get(up);
    }
    if (!nested) totalBy.set(key, (totalBy.get(key) ?? 0) + (total.get(node.id) ?? 0));
  }
  const top = [...selfBy.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, s]) => ({ fn, selfMs: s / 1000, selfPct: busy ? (100 * s) / busy : 0, totalPct: busy ? (100 * (totalBy.get(fn) ?? 0)) / busy : 0 }));
  return { busyMs: busy / 1000, top };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A flame graph (root at the bottom, width = sampled time, idle left out) as a standalone SVG. */
export function flameGraphSvg(p: CpuProfile, title: string): string {
  const { total } = times(p);
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const root = p.nodes.find((x) => !p.nodes.some((y) => y.children?.includes(x.id)))!;
  const kids = (id: number): ProfileNode[] => (byId.get(id)!.children ?? []).map((c) => byId.get(c)!).filter((c) => !QUIET.has(c.callFrame.functionName));
  const width = 1200;
  const rowH = 16;
  const busy = kids(root.id).reduce((s, c) => s + (total.get(c.id) ?? 0), 0);
  const minUs = busy / width / 2;
  const rects: string[] = [];
  let depthMax = 0;
  const draw = (node: ProfileNode, x: number, depth: number): void => {
    const t = total.get(node.id) ?? 0;
    if (t < minUs) return;
    depthMax = Math.max(depthMax, depth);
    const w = (t / busy) * width;
    const cf = node.callFrame;
    const name = cf.functionName || '(anonymous)';
    const hue = cf.url.includes('node_modules') ? 40 : cf.url.startsWith('node:') || !cf.url ? 200 : 12;
    const light = 55 + ((name.length * 7) % 20);
    const text = w > 40 ? name.slice(0, Math.floor(w / 7)) : '';
    rects.push(
      `<g><title>${esc(label(cf))} — ${(t / 1000).toFixed(1)} ms (${((100 * t) / busy).toFixed(1)} %)</title>` +
        `<rect x="${x.toFixed(2)}" y="${depth}" width="${w.toFixed(2)}" height="${rowH - 1}" fill="hsl(${hue},75%,${light}%)"/>` +
        (text ? `<text x="${(x + 3).toFixed(2)}" y="${depth}" dy="11">${esc(text)}</text>` : '') +
        `</g>`,
    );
    let cx = x;
    for (const c of kids(node.id)) {
      draw(c, cx, depth + 1);
      cx += ((total.get(c.id) ?? 0) / busy) * width;
    }
  };
  let x = 0;
  for (const c of kids(root.id)) {
    draw(c, x, 0);
    x += ((total.get(c.id) ?? 0) / busy) * width;
  }
  const height = (depthMax + 1) * rowH + 30;
  // Rows were numbered by depth; flip them so the root is at the bottom.
  const body = rects.map((r) => r.replace(/ y="(\d+)"/g, (_m, d: string) => ` y="${height - (Number(d) + 1) * rowH}"`)).join('\n');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="11">\n` +
    `<text x="4" y="14" font-size="13">${esc(title)}: ${(busy / 1000).toFixed(0)} ms sampled (idle left out); hover a frame for its time</text>\n` +
    `${body}\n</svg>\n`
  );
}

/**
 * Writes `<file>.svg` beside a .cpuprofile (trimmed to `w` when given: the
 * .cpuprofile is rewritten trimmed too) and returns its summary lines, or
 * none when it holds less than `minBusyMs` of CPU time.
 */
export function report(file: string, title: string, o: { top?: number; window?: Window | undefined; minBusyMs?: number } = {}): string[] {
  const p = trim(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, o.window);
  const { busyMs, top } = topFunctions(p, o.top ?? 10);
  if (busyMs < (o.minBusyMs ?? 0)) return [];
  if (o.window) writeFileSync(file, JSON.stringify(p));
  writeFileSync(file.replace(/\.cpuprofile$/, '.svg'), flameGraphSvg(p, title));
  const lines = [`${title}: ${busyMs.toFixed(0)} ms busy (not idle; on a loaded machine this includes waiting for a core)${o.window ? ` in ${((o.window.toUs - o.window.fromUs) / 1000).toFixed(0)} ms` : ''} (${relative(process.cwd(), file)}, .svg beside it); top self time:`];
  for (const t of top) lines.push(`  ${t.selfPct.toFixed(1).padStart(5)} % self ${t.totalPct.toFixed(1).padStart(5)} % total  ${t.fn}`);
  return lines;
}

/**
 * Names, trims and reports the profiles spawned processes wrote into `dir`
 * (CPU.*.<pid>.<tid>.*.cpuprofile): `names` maps a pid to a role; tid 0 is
 * the main thread, others are task threads (reported when they were busy).
 */
export function reportDir(dir: string, names: ReadonlyMap<number, string>, log: (l: string) => void, o: { top?: number; window?: Window | undefined } = {}): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const out: { title: string; file: string }[] = [];
  for (const f of files) {
    const m = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(f);
    if (!m) continue;
    const role = names.get(Number(m[1])) ?? `pid ${m[1]}`;
    const thread = m[2] === '0' ? 'main' : `thread${m[2]}`;
    const named = join(dir, `${role}-${thread}.cpuprofile`);
    renameSync(join(dir, f), named);
    out.push({ title: `${role} ${thread === 'main' ? 'main thread' : `task ${thread}`}`, file: named });
  }
  out.sort((a, b) => a.title.localeCompare(b.title));
  for (const { title, file } of out) for (const l of report(file, title, { ...o, minBusyMs: 20 })) log(l);
}
