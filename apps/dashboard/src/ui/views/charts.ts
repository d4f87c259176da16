import uPlot from 'uplot';
import { h, num } from '../dom.ts';
import { state, type View } from '../app-state.ts';

export function chartsView(): View {
  let grid!: HTMLElement;
  const plots = new Map<string, uPlot>();
  let ro: ResizeObserver | undefined;
  const boxes = new Map<string, HTMLElement>();
  const width = (box: HTMLElement) => Math.max(200, box.clientWidth - 26);
  return {
    mount(r) {
      grid = h('div', { class: 'grid charts', id: 'charts' });
      r.append(h('h1', {}, 'Charts'), h('p', { class: 'muted' }, 'From the dashboard\'s own scrapes of the services\' /metrics (a rate per second or the current value), over the retained window.'), grid);
      ro = new ResizeObserver(() => {
        for (const [id, p] of plots) p.setSize({ width: width(boxes.get(id)!), height: 180 });
      });
      ro.observe(grid);
    },
    update() {
      const se = state.series;
      if (!se) return;
      const xs = se.times.map((t) => t / 1000);
      for (const d of se.defs) {
        const ys = se.values[d.id] ?? [];
        const data: uPlot.AlignedData = [xs, ys.map((v) => (v === null ? null : v))];
        let p = plots.get(d.id);
        if (!p) {
          const box = h('section', { class: 'card chart', 'data-series': d.id }, h('h2', {}, `${d.label}${d.unit ? ` (${d.unit})` : ''}`));
          grid.append(box);
          boxes.set(d.id, box);
          p = new uPlot(
            {
              width: width(box),
              height: 180,
              legend: { show: false },
              series: [{}, { label: d.label, stroke: '#2563eb', width: 1.5, fill: 'rgba(37,99,235,0.08)', value: (_u, v) => num(v, 2) }],
              axes: [{}, { size: 60, values: (_u, vals) => vals.map((v) => num(v, 1)) }],
              scales: { y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, max ?? 1)] } },
            },
            data,
            box,
          );
          plots.set(d.id, p);
        } else p.setData(data);
      }
    },
    unmount() {
      ro?.disconnect();
      for (const p of plots.values()) p.destroy();
      plots.clear();
    },
  };
}
