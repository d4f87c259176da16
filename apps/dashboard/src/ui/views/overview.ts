import { h, replace, card, badge, table, ago, ms, num } from '../dom.ts';
import { state, type View } from '../app-state.ts';
import { jobLabel, jobProgress, progressBar, protectedBadge, hashLine, stateBadge, empty } from './common.ts';

export function overview(): View {
  let root!: HTMLElement;
  return {
    mount(r) {
      root = h('div', { class: 'grid', id: 'overview' });
      r.append(h('h1', {}, 'Overview'), root);
    },
    update() {
      const s = state.snap!;
      const live = s.workers.length;
      const gone = s.workerHistory.filter((w) => w.goneAt !== undefined).length;
      const byState: Record<string, number> = {};
      for (const j of s.jobs) byState[j.state] = (byState[j.state] ?? 0) + 1;
      const running = s.jobs.filter((j) => j.state === 'running' || j.state === 'queued');
      const finished = s.jobs.filter((j) => j.finishedAt).slice(0, 6);
      const bad = s.monitors.filter((m) => m.value !== 0);
      const nodes = s.vm.nodes;
      replace(
        root,
        card(
          'Coordinator',
          h('p', {}, s.coordinator.up ? badge('up', 'ok') : badge('down', 'bad'), ' ', h('code', {}, s.coordinator.url ?? 'not configured')),
          s.coordinator.error ? h('p', { class: 'error' }, s.coordinator.error) : null,
          h('p', {}, `${s.jobsTotal} jobs: `, Object.entries(byState).map(([k, v]) => h('span', { class: 'chip' }, `${k} ${v}`))),
        ),
        card(
          'Workers',
          h('p', { class: 'big' }, `${live} live`, gone ? h('span', { class: 'muted' }, ` · ${gone} gone`) : null),
          h('p', {}, s.workers.map((w) => h('span', { class: 'chip' }, w.name, w.tasks.length ? ' ▶' : ''))),
          h('p', {}, h('a', { href: '/workers' }, 'workers →')),
        ),
        card(
          `VM ${s.vm.vmId}`,
          h('p', { id: 'vm-protected' }, protectedBadge(s), s.vm.primary ? ` primary ${s.vm.primary}` : ' no live primary', s.vm.backup ? `, backup ${s.vm.backup}` : ''),
          h('p', {}, nodes.map((n) => h('span', { class: 'chip' }, n.status ? `${n.status.nodeId}: ${n.status.role}${n.status.live ? ' (live)' : ''} e${n.status.epoch}` : `${n.url}: down`))),
          h('p', {}, hashLine(s)),
          h('p', {}, h('a', { href: '/vm' }, 'VM pair →')),
        ),
        card(
          'Invariant monitors',
          s.monitors.length === 0
            ? empty('no invariant monitors exported yet')
            : h('div', {}, h('p', {}, bad.length === 0 ? badge(`all ${s.monitors.length} at 0`, 'ok') : badge(`${bad.length} not 0`, 'bad')),
                table(['monitor', 'where', 'value'], s.monitors.map((m) => [h('code', {}, m.name + labelText(m.labels)), m.target, m.value === 0 ? num(m.value) : h('strong', { class: 'error' }, num(m.value))]))),
        ),
        card(
          'Jobs running',
          running.length === 0 ? empty('none') : table(['job', 'app', 'progress'], running.slice(0, 8).map((j) => [jobLabel(j), j.app, progressBar(jobProgress(j))])),
          h('p', {}, h('a', { href: '/jobs' }, 'jobs →')),
        ),
        card(
          'Job outcomes',
          finished.length === 0 ? empty('no finished jobs yet') : table(['job', 'outcome', 'finished'], finished.map((j) => [jobLabel(j), stateBadge(j.state), ago(Date.parse(j.finishedAt!))])),
        ),
        card(
          'Recent failovers',
          s.vm.failovers.length === 0
            ? empty('none seen')
            : table(['when', 'took over', 'epoch', 'failover', 'stages'], s.vm.failovers.slice(0, 5).map((f) => [ago(f.at), f.toNode ?? '–', f.epoch ?? '–', ms(f.durationMs), f.stages.map((x) => x.name).join(' → ') || '–'])),
        ),
        card('Events', s.events.length === 0 ? empty('nothing yet') : h('ul', { class: 'events' }, s.events.slice(0, 12).map((e) => h('li', {}, h('span', { class: 'muted' }, ago(e.at)), ' ', badge(e.kind, 'muted'), ' ', e.text)))),
        card('Telemetry', h('p', {}, `${num(s.traces.traces)} traces, ${num(s.traces.spans)} spans held`, s.traces.dropped ? ` (${num(s.traces.dropped)} dropped)` : ''),
          table(['scrape target', 'up', 'last'], s.targets.map((t) => [`${t.name} (${t.job})`, t.up ? badge('up', 'ok') : badge('down', 'bad'), ago(t.lastScrapeAt)]))),
      );
    },
  };
}

function labelText(labels: Record<string, string>): string {
  const e = Object.entries(labels).filter(([k]) => k !== 'service');
  return e.length ? `{${e.map(([k, v]) => `${k}="${v}"`).join(',')}}` : '';
}
