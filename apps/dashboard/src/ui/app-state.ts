import type { Series, Snapshot } from './types.ts';

/** What every view reads: the latest snapshot and series (from the live stream) and a JSON fetch. */
export interface View {
  /** Builds the view's fixed parts once. */
  mount(root: HTMLElement, params: Record<string, string>): void;
  /** Redraws the live parts from the latest state (called on every update). */
  update(): void;
  unmount?(): void;
}

export const state: { snap: Snapshot | undefined; series: Series | undefined } = { snap: undefined, series: undefined };

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(path, {
    method,
    headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const data = (await r.json().catch(() => ({}))) as { code?: string; message?: string };
  if (!r.ok) throw new ApiError(r.status, data.code ?? 'HTTP', data.message ?? `HTTP ${r.status}`);
  return data as T;
}

/** Navigates inside the page (no reload). Set by main.ts. */
export const nav: { go(path: string): void } = { go: () => {} };
