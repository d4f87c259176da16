import { h, s as svg, replace, table, card, num, ms, time } from '../dom.ts';
import { state, api, ApiError, type View } from '../app-state.ts';
import { jobProgress, progressBar, stateBadge, empty } from './common.ts';
import { cancelButton } from './jobs.ts';
import type { Job } from '../types.ts';

interface Attempt { lane: string; taskId: string; phase: string; attempt: number; startMs: number; endMs?: number; outcome: string }
interface Timeline { source: string; lanes: string[]; attempts: Attempt[] }
interface Detail { job: Job; timeline: Timeline; traceId: string | null }

export function jobView(): View {
  let root!: HTMLElement;
  let id = '';
  let detail: Detail | undefined;
  let error = '';
  let inflight = false;
  let lastKey = '';
  let lateReloads = 0;
  const load = () => {
    if (inflight) return;
    inflight = true;
    api<Detail>('GET', `/api/jobs/${encodeURIComponent(id)}`).then(
      (d) => {
        detail = d;
        error = '';
        draw();
      },
      (e: ApiError) => {
        error = e.message;
        draw();
      },
    ).finally(() => (inflight = false));
  };
  const draw = () => {
    if (error && !detail) return replace(root, h('p', { class: 'error' }, error));
    if (!detail) return replace(root, h('p', { class: 'muted' }, 'Loading…'));
    const j = detail.job;
    const pct = jobProgress(j);
    replace(
      root,
      h('h1', {}, 'Job ', h('span', { class: 'job-name' }, j.name ?? j.id), ' ', stateBadge(j.state), ' ', cancelButton(j)),
      h('p', { class: 'muted' }, `${j.id} · ${j.app} · ${j.inputs} inputs · ${j.reduces} reduces · submitted ${time(j.submittedAt)}`, j.finishedAt ? ` · finished ${time(j.finishedAt)}` : ''),
      h('div', { id: 'job-progress', 'data-pct': pct }, progressBar(pct, `${pct} % (maps ${j.tasks.map.done}/${j.tasks.map.total}, reduces ${j.tasks.reduce.done}/${j.tasks.reduce.total})`)),
      j.error ? h('p', { class: 'error' }, j.error) : null,
      card(
        'Task timeline',
        timelineSvg(detail.timeline),
        h('p', { class: 'muted' }, detail.timeline.source === 'traces' ? 'from the workers\' task spans (attempts that ended)' : detail.timeline.source === 'coordinator' ? 'from the coordinator\'s task list' : 'no task data yet'),
        legend(),
      ),
      h(
        'div',
        { class: 'grid' },
        card('Attempts', table(['started', 're-issued', 'failed'], [[num(j.attempts.started), num(j.attempts.reissued), num(j.attempts.failed)]])),
        card('Counters', Object.keys(j.counters).length === 0 ? empty('none yet') : table(['counter', 'value'], Object.entries(j.counters).sort().map(([k, v]) => [h('code', {}, k), num(v)]))),
        card('Output', h('p', {}, h('code', {}, j.output)), j.outputFiles.length === 0 ? empty('no output files yet') : h('ul', { class: 'files' }, j.outputFiles.map((f) => h('li', {}, h('code', {}, f))))),
        card('Trace', detail.traceId ? h('a', { href: `/traces/${detail.traceId}`, id: 'job-trace' }, `trace ${detail.traceId.slice(0, 12)}…`) : empty('no trace received for this job (yet)')),
      ),
    );
  };
  return {
    mount(r, params) {
      root = r;
      id = params['id'] ?? '';
      draw();
      load();
    },
    update() {
      // Reload the detail when the job moved (from the live snapshot), while it runs, and for
      // a while after it finished until every task's attempt is on the timeline (spans arrive
      // a moment after the work they describe).
      const j = state.snap?.jobs.find((x) => x.id === id);
      const key = j ? `${j.state}|${j.tasks.map.done}|${j.tasks.reduce.done}|${j.attempts.started}` : '';
      const tasks = j ? j.tasks.map.total + j.tasks.reduce.total : 0;
      const catchingUp = !!detail && detail.timeline.attempts.length < tasks && lateReloads < 30;
      if (key !== lastKey || j?.state === 'running' || catchingUp) {
        if (key === lastKey && j?.state !== 'running') lateReloads++;
        lastKey = key;
        load();
      }
    },
  };
}

const COLORS: Record<string, string> = { map: 'map', reduce: 'reduce' };

function outcomeClass(o: string): string {
  if (/commit|done|succeed/.test(o)) return 'ok';
  if (/fail/.test(o)) return 'failed';
  if (/stale|abandon/.test(o)) return 'stale';
  if (/lost|expire/.test(o)) return 'lost';
  if (/reissue/.test(o)) return 'reissued';
  return 'running';
}

function timelineSvg(t: Timeline): Element {
  if (t.attempts.length === 0) return empty('No task attempts yet.');
  const now = Date.now();
  const t0 = Math.min(...t.attempts.map((a) => a.startMs));
  const t1 = Math.max(...t.attempts.map((a) => a.endMs ?? now), t0 + 1);
  const laneH = 26;
  const left = 110;
  const width = 900;
  const height = t.lanes.length * laneH + 24;
  const x = (v: number) => left + ((v - t0) / (t1 - t0)) * (width - left - 10);
  const g: Element[] = [];
  t.lanes.forEach((lane, i) => {
    g.push(svg('text', { x: 4, y: i * laneH + 17, class: 'lane-label' }, lane.length > 16 ? `${lane.slice(0, 15)}…` : lane));
    g.push(svg('line', { x1: left, x2: width - 10, y1: i * laneH + laneH, y2: i * laneH + laneH, class: 'lane-line' }));
  });
  for (const a of t.attempts) {
    const i = t.lanes.indexOf(a.lane);
    const x0 = x(a.startMs);
    const w = Math.max(2, x(a.endMs ?? now) - x0);
    g.push(
      svg(
        'rect',
        { x: x0, y: i * laneH + 4, width: w, height: laneH - 8, rx: 3, class: `attempt ${COLORS[a.phase] ?? 'map'} ${outcomeClass(a.outcome)}`, 'data-outcome': a.outcome },
        svg('title', {}, `${a.taskId} attempt ${a.attempt} on ${a.lane}: ${a.outcome}, ${ms((a.endMs ?? now) - a.startMs)}`),
      ),
    );
  }
  g.push(svg('text', { x: left, y: height - 4, class: 'axis' }, '0'), svg('text', { x: width - 60, y: height - 4, class: 'axis' }, ms(t1 - t0)));
  return h('div', { class: 'timeline-wrap' }, svg('svg', { class: 'timeline', id: 'timeline', viewBox: `0 0 ${width} ${height}`, 'data-attempts': t.attempts.length, role: 'img', 'aria-label': 'task timeline' }, g));
}

function legend(): HTMLElement {
  const item = (cls: string, text: string) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${cls}` }), text);
  return h('p', { class: 'legend' }, item('map ok', 'map'), item('reduce ok', 'reduce'), item('map failed', 'failed'), item('map reissued', 're-issued'), item('map stale', 'stale'), item('map lost', 'lost'), item('map running', 'running'));
}
