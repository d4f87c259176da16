// The network-namespace harness itself (tests/src/netns.ts): distinct addresses that
// reach each other, a link taken down partitions a host and up heals it, no route
// out of the lab, and nothing left behind (including by a killed earlier run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { NetLab, cleanStale, netnsUnavailable, type NetHost } from '../src/netns.ts';

/**
 * Fetches each url from inside host h, in one process: per url the body, or the error's name
 * (TimeoutError when a link on the way is down). urls: [url, timeoutMs].
 */
async function fetchFrom(net: NetLab, h: NetHost, urls: [string, number][]): Promise<string[]> {
  const one = (u: string, ms: number) => `fetch(${JSON.stringify(u)}, { signal: AbortSignal.timeout(${ms}) }).then((r) => r.text()).then((b) => 'body:' + b, (e) => 'error:' + (e.cause?.code ?? e.name))`;
  const script = `Promise.all([${urls.map(([u, ms]) => one(u, ms)).join(', ')}]).then((r) => console.log(JSON.stringify(r))).finally(() => process.exit(0))`;
  const r = await net.exec(h, process.execPath, ['-e', script]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

function names(): string {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }) + execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
}

test('netns harness: hosts on distinct addresses reach each other; a link down partitions, up heals; all removed at the end', async (t) => {
  const net = await NetLab.open(t, { hosts: 3 });
  if (!net) return;
  const [h1, h2, h3] = net.hosts as [NetHost, NetHost, NetHost];
  assert.equal(new Set(net.hosts.map((h) => h.addr)).size, 3);
  // Servers bound to h1's and h3's addresses, inside h1 and h3.
  const serve = (h: NetHost) => net.spawn(h, process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('from h${h.index}')).listen(8000, ${JSON.stringify(h.addr)}, () => console.log('up'))`]);
  const [s1, s3] = [serve(h1), serve(h3)];
  await Promise.all([once(s1.stdout!, 'data'), once(s3.stdout!, 'data')]);
  const [u1, u3] = [net.url(h1, 8000), net.url(h3, 8000)];
  const LONG = 10_000;
  assert.deepEqual(await fetchFrom(net, h2, [[u1, LONG], [u3, LONG]]), ['body:from h1', 'body:from h3']);
  // The test itself reaches the hosts through the bridge.
  assert.equal(await (await fetch(u1)).text(), 'from h1');
  // No route leaves the lab: only the /24 on eth0 (and loopback).
  const routes = (await net.exec(h2, 'ip', ['route', 'show'])).stdout;
  assert.match(routes, new RegExp(`^${net.gateway.replace(/\.254$/, '.0').replace(/\./g, '\\.')}/24 dev eth0`, 'm'));
  assert.doesNotMatch(routes, /default/);

  net.down(h1);
  assert.equal(net.isUp(h1), false);
  // h1 is cut off; h2 and h3 still reach each other; h1 still reaches itself.
  const [fromH2, fromH1] = await Promise.all([fetchFrom(net, h2, [[u1, 1000], [u3, LONG]]), fetchFrom(net, h1, [[u1, LONG]])]);
  assert.deepEqual(fromH2, ['error:TimeoutError', 'body:from h3']);
  assert.deepEqual(fromH1, ['body:from h1']);

  net.up(h1);
  assert.equal(net.isUp(h1), true);
  assert.deepEqual(await fetchFrom(net, h2, [[u1, LONG]]), ['body:from h1']);

  await net.close();
  assert.ok(s1.signalCode === 'SIGKILL' && s3.signalCode === 'SIGKILL', 'the lab killed its processes');
  const left = names();
  for (const h of net.hosts) {
    assert.ok(!left.includes(h.ns), `${h.ns} removed`);
    assert.ok(!left.includes(h.link), `${h.link} removed`);
  }
  assert.ok(!left.includes(net.bridge), `${net.bridge} removed`);
});

test('netns harness: leftovers of a killed run (its pid gone) are removed by the next lab', async (t) => {
  if (netnsUnavailable()) {
    assert.ok(!process.env['CI'], `${netnsUnavailable()} (CI must run the multi-host tests)`);
    t.skip(netnsUnavailable());
    return;
  }
  // A pid that is certainly gone: a child that has exited.
  const child = spawn(process.execPath, ['-e', '0']);
  await once(child, 'exit');
  const dead = child.pid!.toString(36);
  const ns = `mrn-${dead}-1-h1`;
  const link = `mrn${dead}x1b`;
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['link', 'add', link, 'type', 'bridge']);
  t.after(() => {
    for (const args of [['netns', 'del', ns], ['link', 'del', link]]) {
      try {
        execFileSync('ip', args, { stdio: 'ignore' });
      } catch {
        // removed by the harness, as expected
      }
    }
  });
  assert.ok(names().includes(ns));
  cleanStale();
  const left = names();
  assert.ok(!left.includes(ns), `${ns} removed`);
  assert.ok(!left.includes(link), `${link} removed`);
});
