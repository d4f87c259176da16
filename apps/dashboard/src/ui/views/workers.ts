import { h, replace, table, card, ago, badge } from '../dom.ts';
import { state, type View } from '../app-state.ts';
import { empty, shortJobId } from './common.ts';

export function workersView(): View {
  let root!: HTMLElement;
  return {
    mount(r) {
      root = h('div');
      r.append(h('h1', {}, 'Workers'), root);
    },
    update() {
      const s = state.snap!;
      const live = new Map(s.workers.map((w) => [w.id, w]));
      replace(
        root,
        card(
          'Registered',
          s.workers.length === 0
            ? empty(s.coordinator.up ? 'No workers registered.' : 'The coordinator does not answer.')
            : table(
                ['worker', 'state', 'current task', 'last contact', 'pid', 'host', 'slots', 'registered'],
                s.workers.map((w) => [
                  h('strong', {}, w.name),
                  w.tasks.length ? badge('busy', 'info') : badge('idle', 'muted'),
                  w.tasks.length ? w.tasks.map((t) => h('div', {}, h('a', { href: `/jobs/${encodeURIComponent(t.jobId)}`, title: t.jobId }, shortJobId(t.jobId)), ` ${t.taskId} #${t.attempt}`)) : '–',
                  ago(Date.parse(w.lastContactAt)),
                  w.pid,
                  w.host,
                  w.slots,
                  ago(Date.parse(w.registeredAt)),
                ]),
                { id: 'workers-table' },
              ),
        ),
        card(
          'History (as seen by this dashboard)',
          s.workerHistory.length === 0
            ? empty('nothing yet')
            : table(
                ['worker', 'id', 'state', 'first seen', 'last seen', 'tasks seen', 'last task'],
                s.workerHistory.map((w) => [w.name, h('code', {}, w.id), live.has(w.id) ? badge('live', 'ok') : badge(`gone ${ago(w.goneAt)}`, 'bad'), ago(w.firstSeenAt), ago(w.lastSeenAt), w.tasksSeen, w.lastTask ?? '–']),
              ),
        ),
      );
    },
  };
}
