/**
 * A coordinator (no exit-when-done) with workers, plugin test apps and the
 * job API at hand, over a Lab (temp dir, corpus, every process killed at the end).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from './lab.ts';
import { sleep } from './procs.ts';

export const LIMIT_MS = 90_000;

export class Cluster {
  readonly lab: Lab;
  readonly plugins: string;
  url = '';
  /** plugins: the source of an ES module of plugin apps, loaded by the coordinator and the workers. */
  constructor(t: { after(fn: () => void | Promise<void>): void }, plugins: string) {
    this.lab = new Lab(t);
    this.plugins = join(this.lab.root, 'plugins');
    mkdirSync(this.plugins);
    writeFileSync(join(this.plugins, 'test-apps.mjs'), plugins);
    this.lab.env['MR_PLUGIN_DIR'] = this.plugins;
  }

  async start(coordinatorArgs: string[], workers: number, limitMs = LIMIT_MS): Promise<void> {
    const c = this.lab.spawn('coordinator', ['coordinator', '--port', '0', '--data', this.lab.data, '--input-root', this.lab.root, ...coordinatorArgs], limitMs);
    this.url = (await c.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    for (let i = 0; i < workers; i++) this.worker();
    await this.untilApi('/v1/workers', (b) => b.workers.length >= workers);
  }

  worker(): void {
    this.lab.worker(this.url, LIMIT_MS);
  }

  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.lab.env['MR_TOKEN']}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async untilApi(path: string, ok: (body: any) => boolean, ms = 30_000): Promise<any> {
    const end = Date.now() + ms;
    for (;;) {
      const r = await this.api('GET', path);
      if (r.status === 200 && ok(r.body)) return r.body;
      if (Date.now() > end) throw new Error(`timed out waiting on ${path}: ${JSON.stringify(r.body).slice(0, 2000)}\n${this.lab.describe()}`);
      await sleep(50);
    }
  }

  async submit(body: Record<string, unknown>): Promise<string> {
    const r = await this.api('POST', '/v1/jobs', body);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  }

  async finished(id: string, ms = 60_000): Promise<any> {
    return this.untilApi(`/v1/jobs/${id}`, (j) => ['succeeded', 'failed', 'cancelled'].includes(j.state), ms);
  }
}
