/**
 * Event-triggered faults (tap, await, release: see @mr/chaos TapAction) over
 * the fault proxies a shell put on its links. Named groups a tap captured
 * become variables that later taps' patterns use as `{{name}}`.
 */
import type { FaultAction, TapAction } from '@mr/chaos';
import type { FaultProxy, TapHit } from './fault-proxy.ts';

/** How long a waiting tap or an await may take before the drill fails (the event never came). */
export const TAP_TIMEOUT_MS = 60_000;

export interface NamedProxy {
  name: string;
  proxy: FaultProxy;
}

type TapLike = Extract<FaultAction, { type: 'tap' | 'await' | 'release' }>;

export function isTapAction(a: FaultAction): a is TapLike {
  return a.type === 'tap' || a.type === 'await' || a.type === 'release';
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Taps {
  readonly #vars = new Map<string, string>();
  readonly #armed = new Map<string, Promise<{ link: string; hit: TapHit }>>();
  readonly #cancels = new Set<() => void>();

  /** `links` resolves a link name of the schedule to the proxies it stands for (now). */
  constructor(private readonly links: (link: string) => Promise<NamedProxy[]>) {}

  #pattern(src: string | undefined): RegExp | undefined {
    if (src === undefined) return undefined;
    const filled = src.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      const v = this.#vars.get(name);
      if (v === undefined) throw new Error(`tap pattern /${src}/ uses {{${name}}}, which no earlier tap captured`);
      return escapeRe(v);
    });
    return new RegExp(filled);
  }

  /** Carries out a tap, await or release; resolves with what happened (for the timeline). */
  async exec(a: TapLike, armed?: () => void): Promise<string> {
    if (a.type === 'release') {
      const ps = await this.links(a.link);
      const n = ps.reduce((k, p) => k + p.proxy.release(), 0);
      return `released ${n} held connection(s) on ${ps.map((p) => p.name).join(', ')}`;
    }
    if (a.type === 'await') {
      const armed = this.#armed.get(a.id);
      if (!armed) throw new Error(`await ${a.id}: no tap was armed with that id`);
      return this.#describe(await withTimeout(armed, `tap ${a.id}`));
    }
    // (An object around the promise: an async function would flatten a returned promise into its own.)
    const { hit } = await this.#arm(a);
    armed?.();
    if (a.wait === false) {
      if (!a.id) throw new Error('a tap that does not wait needs an id');
      this.#armed.set(a.id, hit);
      hit.catch(() => {});
      return `armed ${a.id}`;
    }
    return this.#describe(await withTimeout(hit, `tap on ${a.means}`));
  }

  #describe(h: { link: string; hit: TapHit }): string {
    const groups = Object.entries(h.hit.groups).map(([k, v]) => `${k}=${v}`).join(' ');
    return `seen on ${h.link}${groups ? ` (${groups})` : ''}: ${JSON.stringify(h.hit.text.slice(0, 120))}`;
  }

  /** Arms the tap on every proxy of its link; the first hit cancels the others at once. */
  async #arm(a: TapAction): Promise<{ hit: Promise<{ link: string; hit: TapHit }> }> {
    const spec = { request: this.#pattern(a.request), reply: this.#pattern(a.reply), effect: a.effect, ...(a.skip ? { skip: a.skip } : {}) };
    const ps = await this.links(a.link);
    if (ps.length === 0) throw new Error(`no fault proxy on link ${a.link}`);
    const cancels: (() => void)[] = [];
    const cancelAll = (): void => {
      for (const c of cancels) {
        c();
        this.#cancels.delete(c);
      }
    };
    const hit = new Promise<{ link: string; hit: TapHit }>((resolve) => {
      for (const p of ps) {
        const t = p.proxy.tap(spec, (hit) => {
          cancelAll();
          for (const [k, v] of Object.entries(hit.groups)) this.#vars.set(k, v);
          resolve({ link: p.name, hit });
        });
        cancels.push(t.cancel);
        this.#cancels.add(t.cancel);
      }
    });
    return { hit };
  }

  /** Disarms every tap (the drill ends). */
  close(): void {
    for (const c of this.#cancels) c();
    this.#cancels.clear();
  }
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not fire within ${TAP_TIMEOUT_MS / 1000} s`)), TAP_TIMEOUT_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}
