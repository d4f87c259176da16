/**
 * DOM building without HTML strings: every text goes in as a text node and
 * every attribute through setAttribute, so a job name, key or file name is
 * shown as the characters it is (never parsed as markup). Links may only
 * point inside the dashboard (a path starting with one "/").
 */
export type Child = Node | string | number | null | undefined | false | Child[];
export type Attrs = Record<string, string | number | boolean | undefined | null | EventListener>;

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el: Element, c: Child): void {
  if (c === null || c === undefined || c === false) return;
  if (Array.isArray(c)) {
    for (const x of c) append(el, x);
    return;
  }
  el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
}

function setAttrs(el: Element, attrs: Attrs): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') {
      el.addEventListener(k.replace(/^on/, ''), v);
      continue;
    }
    if (k === 'href' && !/^\/(?!\/)/.test(String(v))) throw new Error(`link outside the dashboard refused: ${String(v)}`);
    el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function s(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

export function ago(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  const d = Math.max(0, now - ms) / 1000;
  if (d < 1) return 'just now';
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  return `${Math.floor(d / 3600)} h ago`;
}

export function time(ms: number | string | undefined): string {
  if (ms === undefined) return '–';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '–' : d.toLocaleTimeString();
}

export function num(n: number | undefined | null, digits = 0): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  return n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function ms(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n >= 1000 ? `${(n / 1000).toFixed(2)} s` : n >= 10 ? `${n.toFixed(0)} ms` : `${n.toFixed(2)} ms`;
}

export function badge(text: string, kind: 'ok' | 'bad' | 'warn' | 'info' | 'muted'): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text);
}

export function table(head: string[], rows: Child[][], attrs: Attrs = {}): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', attrs, h('thead', {}, h('tr', {}, head.map((x) => h('th', {}, x)))), h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))),
  );
}

export function card(title: string, ...body: Child[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', {}, title), body);
}
