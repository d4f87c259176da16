/**
 * deploy/: the Prometheus config, the Grafana provisioning and dashboards and
 * the compose file agree with each other, and every metric and label the
 * dashboards query is one the real services export. The services run as
 * processes (`mr coordinator`, `mr worker`, `mr vm storage|node`) on free
 * 127.0.0.1 ports, do a little work (a word count, kv requests, a failover),
 * and their /metrics pages are scraped the way Prometheus would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { VmClient } from '@mr/vmft-client';
import { Lab } from '../src/lab.ts';
import { runMr } from '../src/procs.ts';
import { VmCluster, until, vmStatus, waitProtected } from '../src/vm-cluster.ts';
import { DEPLOY, deployYaml, type PromConfig } from '../src/prometheus.ts';
import { emptyExposition, parseExposition, parsePromQL, substituteGrafanaVars, type Exposition } from '../src/promql.ts';
import { checkDashboardShape, checkQueries, dashboardQueries, type Dashboard, type DashQuery } from '../src/deploy-check.ts';

const JOBS = ['mr-coordinator', 'mr-worker', 'vm-storage', 'vm-node'];
const yamlFile = deployYaml;

interface RuleFile {
  groups: { name: string; rules: { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}
const ALERT_TESTS = 'prometheus/tests/alerts.test.yml';

function loadDeploy() {
  const prom = yamlFile<PromConfig>('prometheus/prometheus.yml');
  const dsDir = 'grafana/provisioning/datasources';
  const datasources = readdirSync(join(DEPLOY, dsDir))
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .flatMap((f) => yamlFile<{ datasources: { uid: string; type: string; url: string }[] }>(join(dsDir, f)).datasources);
  const dashDir = join(DEPLOY, 'grafana/dashboards');
  const dashboards = readdirSync(dashDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ file: f, dash: JSON.parse(readFileSync(join(dashDir, f), 'utf8')) as Dashboard }));
  const queries: DashQuery[] = dashboards.flatMap((d) => dashboardQueries(d.file, d.dash));
  const rulesDir = join(DEPLOY, 'prometheus/rules');
  const ruleFiles = readdirSync(rulesDir).filter((f) => f.endsWith('.yml'));
  const alerts = ruleFiles.flatMap((f) =>
    yamlFile<RuleFile>(join('prometheus/rules', f)).groups.flatMap((g) => g.rules.map((r) => ({ ...r, file: f }))),
  );
  const alertQueries: DashQuery[] = alerts.map((a) => ({ dashboard: `rules/${a.file}`, where: `alert ${a.alert}`, expr: a.expr }));
  return { prom, datasources, dashboards, queries, ruleFiles, alerts, alertQueries };
}

test('deploy/: Prometheus config, Grafana provisioning, dashboards and compose file agree', () => {
  const { prom, datasources, dashboards, queries, ruleFiles, alerts, alertQueries } = loadDeploy();

  // Alert rules: loaded by prometheus.yml, each with a severity and text, each unit-tested firing.
  assert.deepEqual((prom as PromConfig).rule_files, ['rules/*.yml']);
  assert.ok(ruleFiles.length > 0);
  const names = alerts.map((a) => a.alert);
  assert.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const want of ['VmUnprotected', 'FtInvariantViolated', 'MrInvariantViolated', 'VmNoLivePrimary', 'MrWorkersGone', 'MrJobFailed', 'MrJournalFsyncSlow']) assert.ok(names.includes(want), want);
  for (const a of alerts) {
    assert.match(a.labels?.['severity'] ?? '', /^(critical|warning)$/, `${a.alert}: severity`);
    assert.ok(a.annotations?.['summary'] && a.annotations['description'], `${a.alert}: summary and description`);
  }
  const ruleTests = yamlFile<RuleTests>(ALERT_TESTS);
  assert.deepEqual(ruleTests.rule_files.sort(), ruleFiles.map((f) => `../rules/${f}`).sort(), 'the unit tests load every rule file');
  const firing = new Set(ruleTests.tests.flatMap((c) => (c.alert_rule_test ?? []).filter((x) => x.exp_alerts.length > 0).map((x) => x.alertname)));
  const quiet = new Set(ruleTests.tests.flatMap((c) => (c.alert_rule_test ?? []).filter((x) => x.exp_alerts.length === 0).map((x) => x.alertname)));
  for (const n of names) {
    assert.ok(firing.has(n), `${n}: a unit test where it fires`);
    assert.ok(quiet.has(n), `${n}: a unit test where it does not`);
  }
  assert.deepEqual(checkQueries(alertQueries, JOBS, new Map()).filter((p) => !/is not exported by job|has no label|grouping label|legend label/.test(p)), [], 'every alert selector names a job');

  // Prometheus: the three jobs the dashboards select by, plain http /metrics, no token.
  assert.deepEqual(prom.scrape_configs.map((s) => s.job_name).sort(), [...JOBS].sort());
  for (const s of prom.scrape_configs) {
    assert.equal(s.metrics_path ?? '/metrics', '/metrics', s.job_name);
    assert.equal(s.scheme ?? 'http', 'http', s.job_name);
    assert.equal(s.authorization, undefined, `${s.job_name}: /metrics needs no token`);
    const targets = (s.static_configs ?? []).flatMap((c) => c.targets);
    assert.ok(targets.length > 0, `${s.job_name} has targets`);
    for (const t of targets) assert.match(t, /^[\w.-]+:\d+$/, `${s.job_name} target ${t}`);
  }
  assert.equal(prom.scrape_configs.find((s) => s.job_name === 'vm-node')!.static_configs!.flatMap((c) => c.targets).length, 2, 'vm-node: primary and backup');

  // Grafana: one provisioned Prometheus datasource; the dashboards name none (their $datasource variable picks one).
  const ds = datasources.filter((d) => d.type === 'prometheus');
  assert.equal(ds.length, 1, 'one provisioned Prometheus datasource');
  assert.match(ds[0]!.url, /^http:\/\/[\w.-]+:9090$/);
  assert.deepEqual(dashboards.map((d) => d.file).sort(), ['ft-vm.json', 'mapreduce.json']);
  for (const d of dashboards) assert.deepEqual(checkDashboardShape(d.file, d.dash), []);
  for (const d of dashboards) assert.doesNotMatch(JSON.stringify(d.dash), new RegExp(ds[0]!.uid), `${d.file} hard-codes no datasource uid`);
  const broken = structuredClone(dashboards[0]!.dash);
  broken.panels!.find((p) => p.type !== 'row')!.datasource = { type: 'prometheus', uid: ds[0]!.uid };
  assert.match(checkDashboardShape('x.json', broken).join('\n'), /datasource uid mr-prometheus/, 'the shape check catches a hard-coded uid');
  const uids = dashboards.map((d) => d.dash.uid);
  assert.equal(new Set(uids).size, uids.length, 'dashboard uids are unique');
  assert.ok(queries.length >= 30, `${queries.length} queries`);

  // The dashboards' own checks that need no services: parseable, every selector names a job.
  const jobOnly = new Map<string, Exposition>();
  const problems = checkQueries(queries, JOBS, jobOnly).filter((p) => !/is not exported by job/.test(p) && !/has no label|grouping label|legend label|label_values label/.test(p));
  assert.deepEqual(problems, []);

  // Compose: mounts what the provisioning expects, where it expects it.
  const compose = yamlFile<{ services: Record<string, { image: string; network_mode?: string; volumes: string[]; command?: string[] }> }>('compose.yaml');
  const provider = yamlFile<{ providers: { type: string; options: { path: string } }[] }>('grafana/provisioning/dashboards/mr.yml').providers[0]!;
  const mounts = (svc: string) => new Map(compose.services[svc]!.volumes.filter((v) => v.startsWith('./')).map((v) => [v.split(':')[1]!, v.split(':')[0]!]));
  for (const svc of ['prometheus', 'grafana']) {
    assert.equal(compose.services[svc]?.network_mode, 'host', `${svc}: host network, to reach services bound to 127.0.0.1`);
    for (const [, src] of mounts(svc)) assert.ok(existsSync(resolve(DEPLOY, src)), `${svc} mounts ${src}, which exists`);
  }
  const pm = mounts('prometheus');
  const configArg = compose.services['prometheus']!.command!.find((c) => c.startsWith('--config.file='))!.split('=')[1]!;
  assert.equal(pm.get(configArg), './prometheus/prometheus.yml');
  assert.equal(pm.get(join(configArg, '..', 'rules')), './prometheus/rules', 'the rules directory is mounted next to the config (rule_files is relative to it)');
  const gm = mounts('grafana');
  assert.equal(gm.get('/etc/grafana/provisioning'), './grafana/provisioning');
  assert.equal(provider.type, 'file');
  assert.equal(gm.get(provider.options.path), './grafana/dashboards', 'the dashboards directory is mounted at the provider path');
});

test('deploy/: promtool accepts the config and every dashboard expression', (t) => {
  const has = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (has.error) {
    // CI installs Debian's prometheus package (.ci/run); elsewhere it is optional.
    assert.ok(!process.env['CI'], 'promtool is installed in CI (.ci/run: apt-get install prometheus)');
    t.skip('promtool not installed (apt-get install --no-install-recommends prometheus)');
    return;
  }
  const cfg = spawnSync('promtool', ['check', 'config', join(DEPLOY, 'prometheus/prometheus.yml')], { encoding: 'utf8' });
  assert.equal(cfg.status, 0, cfg.stdout + cfg.stderr);
  assert.match(cfg.stdout, /SUCCESS: \d+ rules found/, 'the config loads the alert rules');
  // Every alert's unit tests (rules/*.yml against tests/alerts.test.yml).
  const unit = spawnSync('promtool', ['test', 'rules', join(DEPLOY, ALERT_TESTS)], { encoding: 'utf8' });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  assert.match(unit.stdout, /SUCCESS/);

  // Each expression as a recording rule: promtool parses it with Prometheus' own PromQL parser.
  const { queries } = loadDeploy();
  const dir = mkdtempSync(join(tmpdir(), 'mr-deploy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: substituteGrafanaVars(q.expr) }));
  const file = join(dir, 'rules.yml');
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboards', rules }] }));
  const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('PromQL selectors: functions, keywords, strings, durations and grouping labels are not metric names', () => {
  const r = parsePromQL(
    'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{job="x", route!~".*/poll"}[$__rate_interval]))) ' +
      '/ on (route) group_left max without (instance) (up{job=~"a|b"} offset 5m) + 2 * {__name__="mr_workers", job="y"} and bool vector(1)',
  );
  assert.deepEqual(r.selectors.map((s) => s.metric), ['http_request_duration_seconds_bucket', 'up', 'mr_workers']);
  assert.deepEqual(r.selectors[0]!.matchers, [{ label: 'job', op: '=', value: 'x' }, { label: 'route', op: '!~', value: '.*/poll' }]);
  assert.deepEqual(r.groupingLabels, ['le', 'route', 'route', 'instance']);
  assert.deepEqual(parsePromQL('rate(x_total[5m:30s])').selectors.map((s) => s.metric), ['x_total']);
  assert.throws(() => parsePromQL('x{job="a}'), /unterminated/);
});

async function scrape(url: string, into: Exposition): Promise<void> {
  // No Authorization header, as Prometheus sends none: /metrics is exempt from MR_TOKEN.
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, `${url}/metrics: ${text.slice(0, 200)}`);
  parseExposition(text, into);
}



test('every metric and label the dashboards query is exported by the running services', async (t) => {
  const { queries } = loadDeploy();
  const lab = new Lab(t); // sets MR_TOKEN for the coordinator and worker
  const vms = new VmCluster(t); // no token
  const exported = new Map<string, Exposition>(JOBS.map((j) => [j, emptyExposition()]));

  const coordP = (async () => {
    const coord = lab.spawn('coordinator', ['coordinator', '--port', '0', '--data', lab.data, '--input-root', lab.root], 180_000);
    return (await coord.waitFor(/coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  })();
  const vmP = (async () => {
    const storage = await vms.storage();
    const b = await vms.node('b', ['--role', 'backup']);
    const a = await vms.node('a', ['--role', 'primary', '--peer', b.url]);
    return { storage, a, b };
  })();
  const [coordUrl, { storage, a, b }] = await Promise.all([coordP, vmP]);

  // (Real Prometheus evaluating every query and alert: test/prometheus.test.ts.)
  // MapReduce: a small word count with one worker, so task, duration, journal and HTTP series exist.
  const worker = lab.worker(coordUrl, 180_000, ['--metrics-port', '0']);
  const workerUrl = (await worker.waitFor(/metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1]!;
  const inputs = lab.inputs.slice(0, 3);
  const sub = await runMr(['submit', '--coordinator', coordUrl, '--app', 'wc', '--reduces', '2', '--output', '.', '--wait', ...inputs], { cwd: lab.cwd, env: lab.env });
  assert.equal(sub.code, 0, sub.stderr);
  const noToken = await request(`${coordUrl}/v1/jobs`);
  await noToken.body.text();
  assert.equal(noToken.statusCode, 401, 'the coordinator does require the token on its API');
  await scrape(coordUrl, exported.get('mr-coordinator')!);
  await scrape(workerUrl, exported.get('mr-worker')!);
  const wm = await (await fetch(`${workerUrl}/metrics`)).text();
  assert.match(wm, /^mr_worker_bytes_read_total\{[^}]*phase="map"[^}]*\} [1-9]/m, 'the worker counts the input it read');
  assert.match(wm, /^mr_worker_bytes_shuffled_total\{[^}]*\} [1-9]/m, 'and the bytes its reduces fetched');

  // FT VM: protected pair, kv requests on the primary, one refused by the backup, a disk read at storage.
  await waitProtected(a.url, b.url);
  const client = new VmClient({ nodes: [a.url], vmId: 'vm1' });
  t.after(() => client.close());
  for (let i = 0; i < 5; i++) await client.incr('counter');
  await client.put('greeting', 'hello');
  const refused = await request(`${b.url}/v1/vms/vm1/requests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ op: 'get', key: 'greeting' }),
  });
  await refused.body.text();
  assert.equal(refused.statusCode, 503, 'the backup refuses client requests');
  const disk = await request(`${storage.url}/v1/vms/vm1/disk/0`);
  await disk.body.text();
  assert.equal(disk.statusCode, 200);
  await scrape(a.url, exported.get('vm-node')!);
  await scrape(b.url, exported.get('vm-node')!);
  // The backup counts the log bytes it received (the "log bytes/s" panel shows both sides).
  const backupMetrics = await (await fetch(`${b.url}/metrics`)).text();
  assert.match(backupMetrics, /^ft_log_bytes_total\{[^}]*direction="received"[^}]*\} [1-9]/m, 'the backup counts received log bytes');
  await scrape(storage.url, exported.get('vm-storage')!);

  // A failover: the backup takes over, so the failover counter exists.
  a.proc.kill();
  await a.proc.exited;
  await until('the backup to go live', 15_000, async () => (await vmStatus(b.url))?.live === true);
  await scrape(b.url, exported.get('vm-node')!);
  await scrape(storage.url, exported.get('vm-storage')!);

  const problems = checkQueries(queries, JOBS, exported);
  assert.deepEqual(problems, [], 'every name the dashboards use is exported');
  assert.deepEqual(checkQueries(loadDeploy().alertQueries, JOBS, exported), [], 'every name the alert rules use is exported');
  const used = new Set(queries.flatMap((q) => parsePromQL(q.expr).selectors.map((s) => s.metric)));
  t.diagnostic(`${queries.length} queries, ${used.size} metric names, all exported: ${[...used].sort().join(' ')}`);

  // The check catches what a dashboard could get wrong: a made-up name, a histogram without its
  // suffix, a metric of another job, a label the metric does not have.
  const bad = (expr: string, legend?: string): string[] => checkQueries([{ dashboard: 'bad.json', where: 'panel', expr, legend }], JOBS, exported);
  assert.match(bad('sum(mr_workers_live{job="mr-coordinator"})').join('\n'), /mr_workers_live is not exported by job mr-coordinator/);
  assert.match(bad('histogram_quantile(0.9, rate(mr_task_duration_seconds{job="mr-coordinator"}[1m]))').join('\n'), /mr_task_duration_seconds is not exported.*histogram/);
  assert.match(bad('mr_tasks_total_bucket{job="mr-coordinator"}').join('\n'), /not exported/);
  assert.match(bad('ft_role{job=~"vm-node|vm-storage"}').join('\n'), /ft_role is not exported by job vm-storage/);
  assert.match(bad('sum by (stage) (mr_tasks{job="mr-coordinator"})').join('\n'), /grouping label "stage"/);
  assert.match(bad('mr_jobs{job="mr-coordinator", phase="map"}').join('\n'), /has no label "phase"/);
  assert.match(bad('ft_epoch{job="vm-node"}', '{{zone}}').join('\n'), /legend label "zone"/);
  assert.match(bad('ft_epoch').join('\n'), /no job matcher/);
  assert.match(bad('ft_epoch{job="vm"}').join('\n'), /does not scrape/);
});

