/**
 * Real Prometheus (Debian's, started by the test with deploy/'s config and
 * alert rules, 1 s scrapes) watches a real cluster: a coordinator running a
 * job whose worker is killed -9 mid-task (its tasks re-issued), and two FT VM pairs
 * on one storage node, one of which goes through a forced failover (kill -9
 * of its primary). Asserted through Prometheus' HTTP API, as values:
 * - increase() of the failover counter is exactly the failovers that happened
 *   (1 for vm1, 0 for vm2), and of the re-issue counter exactly the re-issues
 *   the coordinator's job view reports (the counters start at 0, so the first
 *   event counts);
 * - the two pairs never show two live nodes for one VM (while the unlabelled
 *   sum of ft_live across both pairs is 2: what the dashboards showed before
 *   every series named its VM);
 * - every dashboard panel expression returns data, and every alert rule
 *   evaluates without error; which alerts fire is printed (and asserted for
 *   the ones the scenario decides).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { VmClient } from '@mr/vmft-client';
import type { JobView, WorkerView } from '@mr/mapreduce-protocol';
import { Lab } from '../src/lab.ts';
import { runMr, sleep } from '../src/procs.ts';
import { VmCluster, freePort, until, vmStatus, waitProtected } from '../src/vm-cluster.ts';
import { DEPLOY, evaluateAll, hasBinary, startPrometheus } from '../src/prometheus.ts';
import { dashboardQueries, type Dashboard } from '../src/deploy-check.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const LIMIT_MS = 280_000;

test('real Prometheus through a VM failover and a worker killed mid-task: increase() equals what happened, two VM pairs never look like split brain, every panel has data, every alert evaluates', async (t) => {
  if (!hasBinary('prometheus')) {
    // CI installs Debian's prometheus package (.ci/run); elsewhere it is optional.
    assert.ok(!process.env['CI'], 'prometheus is installed in CI (.ci/run: apt-get install prometheus)');
    t.skip('prometheus not installed (apt-get install --no-install-recommends prometheus): this test needs /usr/bin/prometheus');
    return;
  }
  const t0 = Date.now();
  const lab = new Lab(t);
  const vms = new VmCluster(t, { nodes: 4, limitMs: LIMIT_MS });
  const auth = { authorization: `Bearer ${lab.env['MR_TOKEN']}` };

  // The coordinator keeps running after the job (no --exit-when-done), so Prometheus scrapes it to the end.
  const coordP = (async () => {
    const coord = lab.spawn('coordinator', ['coordinator', '--port', '0', '--data', lab.data, '--input-root', lab.root, '--heartbeat-timeout', '1s'], LIMIT_MS);
    return { coord, url: (await coord.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]! };
  })();
  const vmP = (async () => {
    const storage = await vms.storage();
    const b = await vms.node('b', ['--role', 'backup']);
    const a = await vms.node('a', ['--role', 'primary', '--peer', b.url]);
    const d = await vms.node('d', ['--role', 'backup', '--vm', 'vm2']);
    const c = await vms.node('c', ['--role', 'primary', '--peer', d.url, '--vm', 'vm2']);
    return { storage, a, b, c, d };
  })();
  const [{ url }, { storage, a, b, c, d }] = await Promise.all([coordP, vmP]);
  // Each worker serves its own /metrics (mr worker --metrics-port): two workers and the replacement of the one killed.
  const workerPorts = [await freePort(), await freePort(), await freePort()];
  const workerTargets = workerPorts.map((p) => `http://127.0.0.1:${p}`);
  const prom = await startPrometheus(t, { 'mr-coordinator': [url], 'mr-worker': workerTargets, 'vm-storage': [storage.url], 'vm-node': [a.url, b.url, c.url, d.url] });
  await Promise.all([waitProtected(a.url, b.url), waitProtected(c.url, d.url, 30_000, 'vm2')]);
  await until('Prometheus to scrape all six targets', 30_000, async () => (await prom.values('count(up{job!="mr-worker"} == 1)')).get('') === 6);
  // Both pairs protected, as Prometheus sees it, before anything happens.
  await until('both VMs protected in Prometheus', 15_000, async () => {
    const p = await prom.values('max by (vm) (ft_protected{job="vm-node"})', 'vm');
    return p.get('vm1') === 1 && p.get('vm2') === 1;
  });

  // A job whose worker crashes: `jobcount` maps take 2-5 s each; two workers run them, and the
  // test kill -9s a worker while it holds a task. Its tasks are re-issued once the coordinator
  // misses its heartbeats (--heartbeat-timeout 1s); a replacement worker joins.
  const sub = await runMr(['submit', '--coordinator', url, '--app', 'jobcount', '--reduces', '1', '--output', '.', ...lab.inputs.slice(0, 4)], { cwd: lab.cwd, env: lab.env });
  assert.equal(sub.code, 0, sub.stderr);
  const jobId = sub.stdout.trim().split('\n')[0]!;
  t.diagnostic(`${Math.round((Date.now() - t0) / 1000)} s: cluster up, both VMs protected in Prometheus, job ${jobId} submitted`);
  const worker = (i: number) => lab.worker(url, LIMIT_MS, ['--metrics-port', String(workerPorts[i])]);
  const workers = [worker(0), worker(1)];
  const crashed = (async () => {
    const busy = await until('a worker to hold a task', 60_000, async () => {
      const r = await request(`${url}/v1/workers`, { headers: auth });
      const list = ((await r.body.json()) as { workers: WorkerView[] }).workers;
      return list.find((w) => w.tasks.length > 0 && workers.some((p) => p.pid === w.pid));
    });
    workers.find((p) => p.pid === busy.pid)!.kill();
    t.diagnostic(`${Math.round((Date.now() - t0) / 1000)} s: killed worker ${busy.id} (pid ${busy.pid}) holding ${busy.tasks.map((x) => x.taskId).join(', ')}`);
    workers.push(worker(2));
  })();

  // Meanwhile, clients on both VMs, and the forced failover of vm1: kill -9 of its primary.
  const c1 = new VmClient({ nodes: [a.url, b.url], vmId: 'vm1' });
  const c2 = new VmClient({ nodes: [c.url, d.url], vmId: 'vm2' });
  t.after(() => Promise.all([c1.close(), c2.close()]));
  for (let i = 0; i < 5; i++) await Promise.all([c1.incr('x'), c2.incr('x')]);
  await sleep(2000); // a few scrapes of the healthy pair
  a.proc.kill();
  await a.proc.exited;
  await until('b to take over vm1', 20_000, async () => (await vmStatus(b.url))?.live === true);
  t.diagnostic(`${Math.round((Date.now() - t0) / 1000)} s: b took over vm1`);
  assert.equal((await c1.incr('x')).value, 6, 'vm1 kept its state through the failover');
  assert.equal((await c2.incr('x')).value, 6);

  const job = await until('the job to finish', 100_000, async () => {
    const r = await request(`${url}/v1/jobs/${jobId}`, { headers: auth });
    const j = (await r.body.json()) as JobView;
    return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
  });
  await crashed;
  t.diagnostic(`${Math.round((Date.now() - t0) / 1000)} s: job ${job.state}`);
  assert.equal(job.state, 'succeeded', JSON.stringify(job));
  const reissued = job.attempts.reissued;
  t.diagnostic(`job ${jobId}: ${job.attempts.started} attempts started, ${reissued} re-issued, ${job.attempts.failed} failed`);

  // Prometheus has the final values once its raw counters equal the coordinator's own account.
  await until('Prometheus to scrape the final re-issue count', 15_000, async () => (await prom.values('sum(mr_tasks_total{job="mr-coordinator", outcome="reissued"})')).get('') === reissued);
  await sleep(1500);
  const range = `${Math.ceil((Date.now() - t0) / 1000) + 30}s`;

  // increase() equals what happened: re-issues (the job view's count) and failovers (one, of vm1).
  const reissues = (await prom.values(`round(sum(increase(mr_tasks_total{job="mr-coordinator", outcome="reissued"}[${range}])))`)).get('');
  assert.equal(reissues, reissued, `increase() of re-issues over the test (${range})`);
  assert.ok(reissued > 0, 'the crash job re-issued tasks');
  const failovers = await prom.values(`round(sum by (vm) (increase(ft_failovers_total{job="vm-node"}[${range}])))`, 'vm');
  assert.deepEqual(Object.fromEntries(failovers), { vm1: 1, vm2: 0 }, 'one failover, of vm1: the first increment counts');
  const takeovers = await prom.values(`round(sum by (vm, kind) (increase(ft_failovers_total{job="vm-node", vm="vm1"}[${range}])))`, 'kind');
  assert.deepEqual(Object.fromEntries(takeovers), { takeover: 1, alone: 0 });
  t.diagnostic(`increase() over ${range}: re-issues ${reissues} (job view: ${reissued}); failovers vm1 ${failovers.get('vm1')}, vm2 ${failovers.get('vm2')}`);

  // Two pairs scraped at once: never two live nodes for one VM, at any second of the test.
  const perVm = await prom.values(`max_over_time((sum by (vm) (ft_live{job="vm-node"}))[${range}:1s])`, 'vm');
  assert.deepEqual(Object.fromEntries(perVm), { vm1: 1, vm2: 1 }, 'at most one live node per VM');
  const livePerNode = await prom.values('sum by (vm, node) (ft_live{job="vm-node"})', 'node');
  assert.deepEqual(Object.fromEntries(livePerNode), { b: 1, c: 1, d: 0 }, 'now: b serves vm1 (a is dead), c serves vm2');
  const unlabelled = (await prom.values(`max_over_time((sum(ft_live{job="vm-node"}))[${range}:1s])`)).get('');
  assert.equal(unlabelled, 2, 'without the vm label the two healthy pairs add up to 2 live nodes');
  const protectedNow = await prom.values('max by (vm) (ft_protected{job="vm-node"})', 'vm');
  assert.deepEqual(Object.fromEntries(protectedNow), { vm1: 0, vm2: 1 }, 'vm1 runs alone after the failover (no backup joined)');
  const exposed = (await prom.values(`max by (vm) (increase(ft_unprotected_seconds_total{job="vm-node"}[${range}]))`, 'vm'));
  assert.ok(exposed.get('vm1')! > 1, `vm1 unprotected ${exposed.get('vm1')} s`);
  assert.ok(exposed.get('vm2')! < exposed.get('vm1')!, `vm2 unprotected ${exposed.get('vm2')} s (start only)`);
  const bytes = await prom.values('sum by (__name__) ({job="mr-worker", __name__=~"mr_worker_bytes_(read|written|shuffled)_total"})', '__name__');
  for (const [name, v] of bytes) assert.ok(v > 0, `${name} ${v}`);
  assert.equal(bytes.size, 3, 'bytes read, written and shuffled, from the workers\' own /metrics');
  const invariants = await prom.values('sum(ft_invariant_violations_total{job=~"vm-node|vm-storage"}) + sum(mr_invariant_violations_total{job="mr-coordinator"})');
  assert.equal(invariants.get(''), 0, 'no invariant monitor moved');

  // Every dashboard panel and variable expression returns data.
  const dashDir = join(DEPLOY, 'grafana/dashboards');
  const queries = readdirSync(dashDir).filter((f) => f.endsWith('.json')).flatMap((f) => dashboardQueries(f, JSON.parse(readFileSync(join(dashDir, f), 'utf8')) as Dashboard));
  assert.deepEqual(await evaluateAll(prom.query, queries, () => false, 10_000), [], 'every dashboard query has series');
  const shown: string[] = [];
  for (const q of queries.filter((x) => /Protected|Live primaries|Time unprotected|Invariant|Failovers|Re-issued|Jobs finished/.test(x.where))) {
    const r = await prom.query(q.expr.replaceAll('$__range', range).replaceAll('$__rate_interval', '1m').replaceAll('$vm', '.+').replaceAll('$node', '.+').replaceAll('$instance', '.+'));
    shown.push(`${q.dashboard} ${q.where}: ${(r.data?.result ?? []).map((s) => `${JSON.stringify(s.metric)}=${s.value[1]}`).join(' ')}`);
  }
  t.diagnostic(`panels:\n${shown.join('\n')}`);

  // Every alert rule evaluates; the scenario decides some of them.
  const rules = await prom.rules();
  assert.ok(rules.length >= 10, `${rules.length} rules loaded`);
  for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
  const state = Object.fromEntries(rules.map((r) => [r.name, `${r.state}${r.alerts?.length ? ` ${r.alerts.map((x) => JSON.stringify({ ...x.labels, alertname: undefined, severity: undefined })).join(' ')}` : ''}`]));
  t.diagnostic(`alerts: ${JSON.stringify(state, null, 1)}`);
  const unprotected = rules.find((r) => r.name === 'VmUnprotected')!;
  assert.notEqual(unprotected.state, 'inactive', 'vm1 runs alone: VmUnprotected is pending or firing');
  assert.deepEqual(unprotected.alerts!.map((x) => x.labels['vm']), ['vm1']);
  for (const quiet of ['VmNoLivePrimary', 'VmTwoLivePrimaries', 'FtInvariantViolated', 'MrInvariantViolated', 'MrWorkersGone', 'MrJobFailed', 'MrCoordinatorDown']) {
    assert.equal(rules.find((r) => r.name === quiet)?.state, 'inactive', quiet);
  }
  t.diagnostic(`took ${Math.round((Date.now() - t0) / 1000)} s`);
});
