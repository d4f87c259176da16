import { h, badge, num, type Child } from '../dom.ts';
import type { Job, Snapshot } from '../types.ts';

export function jobProgress(j: Job): number {
  const total = j.tasks.map.total + j.tasks.reduce.total;
  if (j.state === 'succeeded') return 100;
  return total === 0 ? 0 : Math.floor(((j.tasks.map.done + j.tasks.reduce.done) / total) * 100);
}

export function stateBadge(state: string): HTMLElement {
  const kind = state === 'succeeded' ? 'ok' : state === 'failed' ? 'bad' : state === 'cancelled' ? 'muted' : state === 'running' ? 'info' : 'warn';
  return badge(state, kind);
}

export function progressBar(pct: number, label?: string): HTMLElement {
  const bar = h('div', { class: 'bar-fill' });
  bar.style.width = `${Math.max(0, Math.min(100, pct))}%`;
  return h('div', { class: 'bar', role: 'progressbar', 'aria-valuenow': pct, 'aria-valuemin': 0, 'aria-valuemax': 100 }, bar, h('span', { class: 'bar-label' }, label ?? `${pct} %`));
}

/** A job id short enough for a table cell: a ULID's last 8 characters (its first 10 are the time, shared by jobs submitted together). */
export function shortJobId(id: string): string {
  return id.length === 26 ? `…${id.slice(-8)}` : id;
}

export function jobLabel(j: Job): Child {
  return h('a', { href: `/jobs/${encodeURIComponent(j.id)}` }, j.name ? `${j.name}` : j.id);
}

export function protectedBadge(snap: Snapshot): HTMLElement {
  return snap.vm.protected ? badge('protected', 'ok') : badge('NOT protected', 'bad');
}

export function hashLine(snap: Snapshot): Child {
  const hc = snap.vm.hash;
  if (!hc) return h('span', { class: 'muted' }, 'no common checkpoint reported yet');
  return h(
    'span',
    { class: 'hash-check', 'data-agree': hc.agree ? 'yes' : 'no' },
    hc.agree ? badge('hashes agree', 'ok') : badge('hashes DIFFER', 'bad'),
    ` at instruction ${num(hc.icount)}: `,
    Object.entries(hc.values).map(([node, v]) => h('code', { class: 'hash' }, `${node} ${v.slice(0, 16)}`)),
  );
}

export function empty(text: string): HTMLElement {
  return h('p', { class: 'muted' }, text);
}
