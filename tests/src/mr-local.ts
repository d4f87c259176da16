/**
 * Helpers for the tests of `mr local` with its FT VM section (tests/test/local-vm.test.ts,
 * tests/slow/local-vm-stall.test.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request } from 'undici';

/**
 * The `mr …` processes `mr local` (pid) started: its direct children running
 * bin/mr.js. (tsx's esbuild service is a child too; it exits on its own when
 * its parent's pipe closes.)
 */
export function children(pid: number): { pid: number; args: string }[] {
  let lines: string[];
  try {
    lines = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n');
  } catch {
    return []; // ps exits 1 when there are none
  }
  return lines
    .filter((l) => l.includes('bin/mr.js'))
    .map((l) => ({ pid: Number(l.trim().split(/\s+/)[0]), args: l.trim() }))
    .filter((c) => c.pid > 0);
}

/** Node ids. The tests find out which one is the primary (a spurious failover on a busy machine may have swapped them). */
export type Id = 'a' | 'b';
export const other = (id: Id): Id => (id === 'a' ? 'b' : 'a');

export async function openSession(url: string): Promise<number> {
  const r = await request(`${url}/v1/vms/vm1/sessions`, { method: 'POST', headersTimeout: 15_000 });
  assert.equal(r.statusCode, 201);
  return ((await r.body.json()) as { session: number }).session;
}

export async function kv(url: string, body: Record<string, string | number>): Promise<{ status: number; body: { value?: unknown; live?: string } }> {
  const r = await request(`${url}/v1/vms/vm1/requests`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), headersTimeout: 15_000 });
  return { status: r.statusCode, body: (await r.body.json()) as { value?: unknown; live?: string } };
}

