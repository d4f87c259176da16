import { h, replace, table, ago, badge } from '../dom.ts';
import { state, api, nav, ApiError, type View } from '../app-state.ts';
import { jobLabel, jobProgress, progressBar, stateBadge, empty } from './common.ts';
import type { Job } from '../types.ts';

const APPS = ['wc', 'grep', 'indexer', 'sort'];

export function jobsView(): View {
  let list!: HTMLElement;
  let filter = '';
  return {
    mount(root) {
      const msg = h('p', { class: 'form-msg', role: 'status', id: 'submit-msg' });
      const form = h(
        'form',
        { class: 'submit', id: 'submit-form' },
        h('label', {}, 'App ', h('select', { name: 'app' }, APPS.map((a) => h('option', { value: a }, a)))),
        h('label', {}, 'Name ', h('input', { name: 'name', maxlength: 200, placeholder: 'a label for people' })),
        h('label', {}, 'Reduces ', h('input', { name: 'reduces', type: 'number', min: 1, max: 1000, value: 4 })),
        h('label', { class: 'wide' }, 'Input files (absolute paths on the coordinator\'s machine, one per line) ', h('textarea', { name: 'inputs', rows: 3, required: true })),
        h('label', { class: 'wide' }, 'Output directory (optional; new or empty) ', h('input', { name: 'output' })),
        h('label', { class: 'wide' }, 'Options (JSON, optional, e.g. {"pattern":"whale"} for grep) ', h('input', { name: 'options' })),
        h('button', { type: 'submit' }, 'Submit job'),
        msg,
      );
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const f = new FormData(form);
        const inputs = String(f.get('inputs') ?? '').split('\n').map((x) => x.trim()).filter(Boolean);
        const body: Record<string, unknown> = { app: String(f.get('app')), inputs, reduces: Number(f.get('reduces')) };
        if (String(f.get('name') ?? '').trim()) body['name'] = String(f.get('name')).trim();
        if (String(f.get('output') ?? '').trim()) body['output'] = String(f.get('output')).trim();
        const opt = String(f.get('options') ?? '').trim();
        if (opt) {
          try {
            body['options'] = JSON.parse(opt);
          } catch {
            msg.textContent = 'Options must be JSON.';
            return;
          }
        }
        msg.textContent = 'Submitting…';
        api<{ id: string }>('POST', '/api/jobs', body).then(
          (r) => nav.go(`/jobs/${encodeURIComponent(r.id)}`),
          (e: ApiError) => (msg.textContent = `Refused: ${e.message}`),
        );
      });
      const sel = h('select', { 'aria-label': 'state' }, ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled'].map((x) => h('option', { value: x }, x || 'all states')));
      sel.addEventListener('change', () => {
        filter = sel.value;
        this.update();
      });
      list = h('div', { id: 'jobs-list' });
      root.append(h('h1', {}, 'Jobs'), h('details', { class: 'card', open: true }, h('summary', {}, 'Submit a job'), form), h('div', { class: 'toolbar' }, sel), list);
    },
    update() {
      const s = state.snap;
      if (!s) return;
      const jobs = s.jobs.filter((j) => !filter || j.state === filter);
      replace(
        list,
        jobs.length === 0
          ? empty('No jobs.')
          : table(
              ['job', 'app', 'state', 'progress', 'maps', 'reduces', 'submitted', ''],
              jobs.map((j) => [jobLabel(j), j.app, stateBadge(j.state), progressBar(jobProgress(j)), `${j.tasks.map.done}/${j.tasks.map.total}`, `${j.tasks.reduce.done}/${j.tasks.reduce.total}`, ago(Date.parse(j.submittedAt)), cancelButton(j)]),
              { class: 'jobs' },
            ),
        s.jobsTotal > s.jobs.length ? h('p', { class: 'muted' }, `showing the newest ${s.jobs.length} of ${s.jobsTotal}`) : null,
      );
    },
  };
}

export function cancelButton(j: Job): HTMLElement | null {
  if (j.state !== 'queued' && j.state !== 'running') return null;
  const b = h('button', { class: 'danger small', type: 'button' }, 'Cancel');
  b.addEventListener('click', () => {
    if (!confirm(`Cancel job ${j.name ?? j.id}?`)) return;
    b.replaceWith(badge('cancelling…', 'warn'));
    api('DELETE', `/api/jobs/${encodeURIComponent(j.id)}`).catch((e: Error) => alert(`Not cancelled: ${e.message}`));
  });
  return b;
}
