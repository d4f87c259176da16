import { h, replace, table, card, ms, time, badge, num } from '../dom.ts';
import { api, ApiError, type View } from '../app-state.ts';
import { empty } from './common.ts';
import type { Span, TraceSummary } from '../types.ts';

interface List { size: { traces: number; spans: number; bytes: number }; limits: Record<string, number>; dropped: { spans: number; traces: number }; services: string[]; traces: TraceSummary[] }

export function tracesView(): View {
  let out!: HTMLElement;
  let form!: HTMLFormElement;
  let timer: ReturnType<typeof setInterval> | undefined;
  const load = () => {
    const f = new FormData(form);
    const q = new URLSearchParams();
    for (const k of ['service', 'name', 'minMs']) {
      const v = String(f.get(k) ?? '').trim();
      if (v) q.set(k, v);
    }
    if (f.get('errors')) q.set('errors', 'true');
    api<List>('GET', `/api/traces?${q}`).then(
      (l) => {
        const sel = form.elements.namedItem('service') as HTMLSelectElement;
        const cur = sel.value;
        replace(sel, h('option', { value: '' }, 'all services'), l.services.map((x) => h('option', { value: x }, x)));
        sel.value = cur;
        replace(
          out,
          h('p', { class: 'muted' }, `${num(l.size.traces)} traces, ${num(l.size.spans)} spans held (at most ${num(l.limits['maxTraces'])} traces, ${num(l.limits['maxSpans'])} spans); ${num(l.dropped.traces)} old traces dropped`),
          l.traces.length === 0
            ? empty('No traces match.')
            : table(
                ['trace', 'root service', 'services', 'spans', 'started', 'duration', ''],
                l.traces.map((t) => [h('a', { href: `/traces/${t.traceId}` }, t.name || t.traceId.slice(0, 12)), t.rootService, t.services.join(', '), t.spans, time(t.startUs / 1000), ms(t.durationMs), t.errors ? badge(`${t.errors} errors`, 'bad') : '']),
                { id: 'traces-table' },
              ),
        );
      },
      (e: ApiError) => replace(out, h('p', { class: 'error' }, e.message)),
    );
  };
  return {
    mount(r) {
      form = h(
        'form',
        { class: 'toolbar' },
        h('select', { name: 'service', 'aria-label': 'service' }, h('option', { value: '' }, 'all services')),
        h('input', { name: 'name', placeholder: 'span name contains', 'aria-label': 'span name' }),
        h('input', { name: 'minMs', type: 'number', min: 0, placeholder: 'min ms', 'aria-label': 'minimum duration' }),
        h('label', {}, h('input', { name: 'errors', type: 'checkbox' }), ' errors only'),
        h('button', { type: 'submit' }, 'Filter'),
      );
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        load();
      });
      out = h('div');
      r.append(h('h1', {}, 'Traces'), form, out);
      load();
      timer = setInterval(load, 5000);
    },
    update() {},
    unmount() {
      if (timer) clearInterval(timer);
    },
  };
}

export function traceView(): View {
  return {
    mount(r, params) {
      const id = params['id'] ?? '';
      const box = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
      r.append(h('h1', {}, 'Trace ', h('code', {}, id.slice(0, 16))), h('p', {}, h('a', { href: '/traces' }, '← all traces')), box);
      api<{ spans: Span[] }>('GET', `/api/traces/${id}`).then(
        (t) => replace(box, waterfall(t.spans)),
        (e: ApiError) => replace(box, h('p', { class: 'error' }, e.message)),
      );
    },
    update() {},
  };
}

const SERVICE_CLASSES = 6;

function waterfall(spans: Span[]): HTMLElement {
  if (spans.length === 0) return empty('No spans.');
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = new Map<string, Span[]>();
  const roots: Span[] = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId)) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const ordered: { s: Span; depth: number }[] = [];
  const walk = (s: Span, depth: number) => {
    ordered.push({ s, depth });
    for (const c of (children.get(s.spanId) ?? []).sort((a, b) => a.startUs - b.startUs)) walk(c, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.startUs - b.startUs)) walk(r, 0);
  const t0 = Math.min(...spans.map((s) => s.startUs));
  const t1 = Math.max(...spans.map((s) => s.endUs), t0 + 1);
  const services = [...new Set(spans.map((s) => s.service))];
  return h(
    'div',
    {},
    h('p', { class: 'muted' }, `${spans.length} spans across ${services.length} services (${services.join(', ')}), ${ms((t1 - t0) / 1000)}`),
    card(
      'Waterfall',
      h(
        'div',
        { class: 'waterfall', id: 'waterfall' },
        ordered.map(({ s, depth }) => {
          const bar = h('div', { class: `wf-bar svc${services.indexOf(s.service) % SERVICE_CLASSES}${s.status.code === 2 ? ' error' : ''}` });
          bar.style.marginLeft = `${((s.startUs - t0) / (t1 - t0)) * 100}%`;
          bar.style.width = `${Math.max(0.3, ((s.endUs - s.startUs) / (t1 - t0)) * 100)}%`;
          const label = h('div', { class: 'wf-label' }, h('span', { class: 'wf-service' }, s.service), ' ', s.name);
          label.style.paddingLeft = `${Math.min(depth, 12) * 12}px`;
          const details = h(
            'details',
            { class: 'wf-row' },
            h('summary', {}, label, h('div', { class: 'wf-track' }, bar), h('span', { class: 'wf-dur' }, ms((s.endUs - s.startUs) / 1000))),
            table(['attribute', 'value'], [
              ['span', h('code', {}, s.spanId)],
              ['process', s.service + (s.instance ? ` (${s.instance})` : '')],
              ...Object.entries(s.attributes).map(([k, v]) => [h('code', {}, k), String(v)]),
              ...s.events.map((e) => [`event @ ${ms((e.timeUs - s.startUs) / 1000)}`, e.name]),
              ...(s.status.message ? [['status', s.status.message]] : []),
            ]),
          );
          return details;
        }),
      ),
    ),
  );
}


