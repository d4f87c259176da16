/**
 * The dashboard page: a small router over the History API, one live stream
 * (GET /api/events, server-sent events) feeding every view, and the views.
 */
import { state, nav, type View } from './app-state.ts';
import { overview } from './views/overview.ts';
import { jobsView } from './views/jobs.ts';
import { jobView } from './views/job.ts';
import { workersView } from './views/workers.ts';
import { vmView } from './views/vm.ts';
import { chartsView } from './views/charts.ts';
import { tracesView, traceView } from './views/traces.ts';
import type { Series, Snapshot } from './types.ts';

const routes: [RegExp, () => View][] = [
  [/^\/$/, overview],
  [/^\/jobs$/, jobsView],
  [/^\/jobs\/(?<id>[A-Za-z0-9_-]+)$/, jobView],
  [/^\/workers$/, workersView],
  [/^\/vm$/, vmView],
  [/^\/charts$/, chartsView],
  [/^\/traces$/, tracesView],
  [/^\/traces\/(?<id>[0-9a-f]{32})$/, traceView],
];

const main = document.getElementById('main')!;
let current: View | undefined;

function show(path: string): void {
  current?.unmount?.();
  current = undefined;
  main.replaceChildren();
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a')) {
    const href = a.getAttribute('href')!;
    a.classList.toggle('active', href === '/' ? path === '/' : path.startsWith(href));
  }
  for (const [re, make] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    current = make();
    current.mount(main, { ...(m.groups ?? {}) });
    if (state.snap) current.update();
    return;
  }
  main.textContent = 'No such page.';
}

nav.go = (path: string) => {
  if (path !== location.pathname + location.search) history.pushState(null, '', path);
  show(location.pathname);
};

// Links inside the dashboard navigate without a reload.
document.addEventListener('click', (ev) => {
  const a = (ev.target as Element | null)?.closest?.('a');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('//') || a.target) return;
  ev.preventDefault();
  nav.go(href);
});
window.addEventListener('popstate', () => show(location.pathname));

const conn = document.getElementById('conn')!;
function connect(): void {
  const es = new EventSource('/api/events');
  es.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.className = 'conn live';
  });
  es.addEventListener('snapshot', (e) => {
    state.snap = JSON.parse((e as MessageEvent<string>).data) as Snapshot;
    current?.update();
    document.body.dataset['ready'] = '1';
  });
  es.addEventListener('series', (e) => {
    state.series = JSON.parse((e as MessageEvent<string>).data) as Series;
    current?.update();
  });
  es.addEventListener('error', () => {
    conn.textContent = 'reconnecting…';
    conn.className = 'conn down';
  });
}

show(location.pathname);
connect();
