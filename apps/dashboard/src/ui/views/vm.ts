import { h, replace, table, card, badge, num, ms, ago } from '../dom.ts';
import { state, type View } from '../app-state.ts';
import { protectedBadge, hashLine, empty } from './common.ts';
import type { FailoverView, NodeView } from '../types.ts';

export function vmView(): View {
  let root!: HTMLElement;
  // Instruction rate per node from successive snapshots, for the backup lag in ms.
  let prev: { at: number; icount: Record<string, number> } | undefined;
  let ips: Record<string, number> = {};
  return {
    mount(r) {
      root = h('div');
      r.append(h('h1', {}, 'VM pair'), root);
    },
    update() {
      const s = state.snap!;
      const icount: Record<string, number> = {};
      for (const n of s.vm.nodes) if (n.status) icount[n.status.nodeId] = n.status.icount;
      if (prev && s.at > prev.at) {
        for (const [k, v] of Object.entries(icount)) if (prev.icount[k] !== undefined && v >= prev.icount[k]!) ips[k] = ((v - prev.icount[k]!) * 1000) / (s.at - prev.at);
      } else if (!prev) ips = {};
      prev = { at: s.at, icount };
      const logRate = last(state.series?.values['vm-log-bytes']);
      const reqRate = last(state.series?.values['vm-requests']);
      replace(
        root,
        h('div', { class: 'card pair', id: 'vm-pair', 'data-protected': s.vm.protected ? 'yes' : 'no' },
          h('h2', {}, `VM ${s.vm.vmId} `, protectedBadge(s)),
          h('p', {}, s.vm.primary ? `primary ${s.vm.primary}` : 'no live primary', s.vm.backup ? `, backup ${s.vm.backup}` : ', no backup'),
          h('p', { id: 'vm-hash' }, hashLine(s)),
          h('p', {}, `log ${logRate === undefined ? '–' : `${num(logRate / 1024, 1)} KiB/s`} · client requests ${reqRate === undefined ? '–' : `${num(reqRate, 1)}/s`}`, s.vm.storage ? [' · storage ', s.vm.storage.up ? badge('up', 'ok') : badge('down', 'bad')] : null),
        ),
        h('div', { class: 'grid' }, s.vm.nodes.map((n) => nodeCard(n, ips))),
        card('Failover history', failovers(s.vm.failovers)),
      );
    },
  };
}

function last(v: (number | null)[] | undefined): number | undefined {
  if (!v) return undefined;
  for (let i = v.length - 1; i >= 0; i--) if (v[i] !== null) return v[i]!;
  return undefined;
}

function nodeCard(n: NodeView, ips: Record<string, number>): HTMLElement {
  const st = n.status;
  if (!st) return h('section', { class: 'card node down' }, h('h2', {}, 'node ', h('code', {}, n.url)), badge('not answering', 'bad'));
  const role = st.live ? badge(`${st.role} (live)`, 'ok') : st.role === 'backup' ? badge('backup', 'info') : badge(st.role, st.role === 'stopped' ? 'bad' : 'warn');
  const rate = ips[st.nodeId];
  const lagMs = st.role === 'primary' && rate ? (st.peer.lagInstructions / rate) * 1000 : undefined;
  return h(
    'section',
    { class: 'card node', 'data-node': st.nodeId, 'data-role': st.role },
    h('h2', {}, `node ${st.nodeId} `, role),
    table(['', ''], [
      ['epoch', num(st.epoch)],
      ['instructions', num(st.icount)],
      ['instructions/s', rate === undefined ? '–' : num(rate)],
      ['log sent / acked', `${num(st.log.sent)} / ${num(st.log.acked)}`],
      ['unacked log bytes', num(st.log.unackedBytes)],
      ['outputs held / released', `${num(st.outputs.held)} / ${num(st.outputs.released)}`],
      ['peer', `${st.peer.state}${st.peer.silentTicks ? ` (silent ${st.peer.silentTicks} ticks)` : ''}`],
      ['backup lag', st.role === 'primary' ? `${num(st.peer.lagInstructions)} instructions${lagMs !== undefined ? ` ≈ ${ms(lagMs)}` : ''}` : '–'],
      ['state hash', h('code', { class: 'hash' }, `@${num(st.hash.icount)} ${st.hash.value.slice(0, 16)}`)],
      ...(st.reason ? [['stopped because', st.reason]] : []),
    ]),
    h('p', { class: 'muted' }, h('code', {}, n.url)),
  );
}

function failovers(list: FailoverView[]): HTMLElement {
  if (list.length === 0) return empty('No failover seen yet. Kill the primary (kill -9 its pid) to see one.');
  return h(
    'div',
    { id: 'failovers' },
    list.map((f) =>
      h(
        'div',
        { class: 'failover', 'data-stages': f.stages.length },
        h('p', {}, h('strong', {}, f.toNode ? `node ${f.toNode} took over` : 'failover'), f.fromNode ? ` from ${f.fromNode}` : '', f.epoch !== undefined ? ` · epoch ${f.epoch}` : '', ` · ${ago(f.at)}`,
          f.durationMs !== undefined ? ` · failover ${ms(f.durationMs)}` : '',
          f.protectedAgainAt !== undefined ? [' · ', badge(`protected again after ${ms(f.protectedAgainAt - f.at)}`, 'ok')] : [' · ', badge('not yet protected again', 'warn')],
          f.traceId ? [' · ', h('a', { href: `/traces/${f.traceId}` }, 'trace')] : ''),
        f.stages.length ? [stagesBar(f), table(['stage', 'starts at', 'took', 'process'], f.stages.map((x) => [stageName(x.name), ms(x.startMs), x.error ? h('span', { class: 'error' }, ms(x.durationMs)) : ms(x.durationMs), x.service]))] : h('p', { class: 'muted' }, 'no failover trace with stages received for it'),
      ),
    ),
  );
}

function stagesBar(f: FailoverView): HTMLElement {
  const total = Math.max(f.durationMs ?? 0, ...f.stages.map((s) => s.startMs + s.durationMs), 0.001);
  return h(
    'div',
    { class: 'stages' },
    f.stages.map((s, i) => {
      const el = h('div', { class: `stage s${i % 5}${s.error ? ' error' : ''}`, title: `${stageName(s.name)}: ${ms(s.durationMs)} (${s.service})` }, h('span', {}, `${stageName(s.name)} ${ms(s.durationMs)}`));
      el.style.marginLeft = `${(s.startMs / total) * 100}%`;
      el.style.width = `${Math.max(1, (s.durationMs / total) * 100)}%`;
      return el;
    }),
  );
}

/** vm.failover.go_live -> go live */
function stageName(name: string): string {
  return name.replace(/^.*failover\./, '').replace(/_/g, ' ');
}
