/**
 * The FT VM across hosts (network namespaces, tests/src/netns.ts): storage on
 * h1, the primary on h2, the backup on h3 (bound to 0.0.0.0, --advertise
 * naming its address), a client load from h4, tokens set. Mid-load the primary's
 * link goes down (a partition: its packets are dropped, nothing is refused):
 * the backup wins test-and-set and serves, the client's history stays
 * correct (every unique incr answered once, values 1..N), and no epoch ever
 * has two live primaries (each node is watched from inside its own host, so
 * the partitioned one is seen too). After the heal the old primary loses
 * test-and-set and stops. Runs with the storage node as the arbiter and with
 * three etcd members on h1, h2 and h4 (the partition takes one of them too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { NetLab, type NetHost } from '../src/netns.ts';
import { EtcdCluster, needEtcd } from '../src/etcd.ts';
import { VmClient, isProtected } from '@mr/vmft-client';
import { until, oneTo } from '../src/vm-cluster.ts';
import type { Proc } from '../src/procs.ts';

const LIMIT_MS = 120_000;
const PORT = 7081;
const TESTS_DIR = fileURLToPath(new URL('..', import.meta.url));

interface Seen {
  nodeId: string;
  role: string;
  live: boolean;
  epoch: number;
}

/** A tests/src/*-main.mjs program inside host h, its stdout lines handed to onLine. */
function tsMain(net: NetLab, h: NetHost, main: string, args: string[], env: NodeJS.ProcessEnv, onLine: (line: string) => void): ChildProcess {
  const child = net.spawn(h, process.execPath, [join(TESTS_DIR, 'src', main), ...args], { cwd: TESTS_DIR, env });
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return child;
}

for (const arbiter of ['storage', 'etcd'] as const) test(`multi-host VM pair (${arbiter === 'etcd' ? 'arbitrated by 3 etcd members on h1, h2, h4' : 'arbitrated by the storage node'}): storage, primary, backup and client on four hosts; the primary's link goes down: one live primary per epoch, the client history stays correct`, async (t) => {
  if (arbiter === 'etcd' && !needEtcd(t)) return;
  const net = await NetLab.open(t, { hosts: 4 });
  if (!net) return;
  const t0 = Date.now();
  const phases: string[] = [];
  const phase = (name: string) => phases.push(`${name} ${Date.now() - t0} ms`);
  const [h1, h2, h3, h4] = net.hosts as [NetHost, NetHost, NetHost, NetHost];
  const dir = mkdtempSync(join(tmpdir(), 'mr-multihost-vm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = { ...process.env, MR_TOKEN: randomBytes(12).toString('hex'), MR_PEER_TOKEN: randomBytes(12).toString('hex'), FORCE_COLOR: '0' };
  delete env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  delete env['NODE_TEST_CONTEXT'];
  const opts = { cwd: dir, env, limitMs: LIMIT_MS };
  const [a, b] = [net.url(h2, PORT), net.url(h3, PORT)];

  const storageUrl = net.url(h1, 7080);
  // etcd: one member on h1, h2 (the primary's host: the partition takes it too) and h4; same ports on each host.
  const etcdHosts = [h1, h2, h4];
  const etcd = arbiter === 'etcd' ? await EtcdCluster.start(t, { addrs: etcdHosts.map((h) => h.addr), ports: [2379, 2380, 2379, 2380, 2379, 2380], prefix: (i) => net.prefix(etcdHosts[i]!) }) : undefined;
  const arbiterArgs = etcd ? ['--storage', `etcd://${etcd.endpoints}`, '--disk', storageUrl] : ['--storage', storageUrl];
  const storage = net.spawnMr(h1, 'storage', ['vm', 'storage', '--host', h1.addr, '--port', '7080', '--data', join(dir, 'storage'), '--vm', 'vm1=a,b'], opts);
  // a binds its own address; b binds every address of its host and advertises the one peers reach.
  const bind = (h: NetHost, id: string) => (id === 'a' ? ['--host', h.addr] : ['--host', '0.0.0.0', '--advertise', net.url(h, PORT)]);
  const node = (h: NetHost, id: string, args: string[]): Proc =>
    net.spawnMr(h, `node ${id}`, ['vm', 'node', '--id', id, ...bind(h, id), '--port', String(PORT), ...arbiterArgs, '--peers', [a, b].join(','), '--guest', 'kv', '--suspect-ticks', '50', ...args], opts);
  // Each node watched from inside its own host, from before it starts.
  const seen: Seen[] = [];
  for (const [h, url] of [[h2, a], [h3, b]] as const) {
    tsMain(net, h, 'vm-watch-main.mjs', [url], env, (line) => {
      if (line.startsWith('status ')) seen.push(JSON.parse(line.slice(7)) as Seen);
    });
  }
  const pb = node(h3, 'b', ['--role', 'backup']);
  assert.equal((await storage.waitFor(/listening on (http:\/\/\S+)/))[1], storageUrl);
  const pa = node(h2, 'a', ['--role', 'primary', '--peer', b]);
  await Promise.all([pa.waitFor(/listening on/), pb.waitFor(/listening on/)]);
  const status = (url: string) => VmClient.status(url, { vmId: 'vm1', token: env['MR_TOKEN'] });
  const explain = (err: Error): never => {
    const last = (id: string) => JSON.stringify(seen.filter((s) => s.nodeId === id).at(-1));
    throw new Error(`${err.message}\nlast seen: a ${last('a')}, b ${last('b')}\n${[storage, pa, pb].map((p) => `--- ${p.name}:\n${p.stdout.slice(-1500)}${p.stderr.slice(-1500)}`).join('\n')}`);
  };
  await until('a protected pair', 30_000, async () => isProtected(await status(a), await status(b))).catch(explain);

  phase('protected');
  await until('both nodes seen by their watchers', 30_000, async () => seen.some((s) => s.nodeId === 'a' && s.live) && seen.some((s) => s.nodeId === 'b' && s.role === 'backup'));
  phase('watched');
  const epoch0 = seen.find((s) => s.nodeId === 'a' && s.live)!.epoch;

  // The client on h4; the primary's link goes down after CUT answers.
  const N = 300;
  const CUT = 100;
  let report: { answered: number; errors: string[]; values: number[]; retries: number; elapsedMs: number } | undefined;
  let cutAt = 0;
  const load = tsMain(net, h4, 'vm-load-main.mjs', [[a, b].join(','), String(N), '4'], env, (line) => {
    if (line === `answered ${CUT}`) {
      net.down(h2);
      cutAt = Date.now();
    } else if (line.startsWith('report ')) report = JSON.parse(line.slice(7));
  });
  let loadErr = '';
  load.stderr!.setEncoding('utf8').on('data', (c: string) => (loadErr += c));
  await until('the client load to finish', 90_000, async () => report ?? (load.exitCode !== null && load.exitCode !== 0 ? Promise.reject(new Error(`load exited ${load.exitCode}: ${loadErr}`)) : undefined)).catch(explain);
  phase('load done');
  assert.ok(cutAt > 0, 'the link went down mid-load');
  const rep = report!;
  t.diagnostic(`client: ${rep.answered}/${N} answered in ${rep.elapsedMs} ms, ${rep.retries} retries; link of h2 down at answer ${CUT}`);
  assert.deepEqual(rep.errors, []);
  assert.deepEqual([...rep.values].sort((x, y) => x - y), oneTo(N), 'every unique incr applied once, in one history');

  // The backup took over in the next epoch.
  const sb = seen.filter((s) => s.nodeId === 'b').at(-1)!;
  assert.equal(sb.live, true);
  assert.equal(sb.role, 'primary');
  assert.equal(sb.epoch, epoch0 + 1);

  // Heal: the old primary reaches storage again, loses test-and-set and stops.
  net.up(h2);
  await until('the old primary to stop', 30_000, async () => seen.filter((s) => s.nodeId === 'a').at(-1)?.role === 'stopped').catch(explain);

  phase('old primary stopped');
  t.diagnostic(phases.join(', '));
  // Never two live primaries in one epoch, over the whole run.
  const liveBy = new Map<number, Set<string>>();
  for (const s of seen) if (s.live) liveBy.set(s.epoch, (liveBy.get(s.epoch) ?? new Set()).add(s.nodeId));
  for (const [epoch, nodes] of liveBy) assert.equal(nodes.size, 1, `epoch ${epoch}: live on ${[...nodes].join(', ')}`);
  t.diagnostic(`statuses seen: ${seen.length}; live per epoch: ${JSON.stringify([...liveBy].map(([e, n]) => [e, [...n]]))}`);
  for (const p of [pa, pb, storage]) assert.ok(p.alive, `${p.name} still running`);
});
