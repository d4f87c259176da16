/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core)
 * against a running `mr local`: a job submitted from the page reaches 100 % with
 * its timeline drawn; the VM pair is protected with agreeing hashes; the primary
 * is killed and the failover (with its stages, when the nodes export the failover
 * trace) and the pair protected again show up. Any console error or failed request
 * fails the test. Screenshots go to a temp dir (DASHBOARD_SHOTS=dir to choose it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { VmClient } from '@mr/vmft-client';

const CHROMIUM = '/usr/bin/chromium';
const MR = fileURLToPath(new URL('../../cli/bin/mr.js', import.meta.url));
// CI installs Debian's chromium (.ci/run): there a missing browser fails the test instead of skipping it.
const skip = existsSync(CHROMIUM) || process.env['CI'] ? false : `${CHROMIUM} is not installed (apt-get install -y chromium): browser test skipped`;

/** Polls `fn` every 100 ms until it holds (throws after `ms`, naming `what`). */
async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startLocal(dir: string) {
  const child = spawn(process.execPath, [MR, 'local', '--no-demo', '--port', '0', '--workers', '2', '--data', join(dir, 'data')], {
    cwd: dir,
    env: { ...process.env, FORCE_COLOR: '0', MR_TOKEN: '', OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const waitFor = async (re: RegExp, ms: number): Promise<RegExpExecArray> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(out);
      if (m) return m;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`mr local: no ${re} (exit ${child.exitCode})\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGINT');
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  };
  return { waitFor, stop, output: () => out };
}

test('the dashboard in chromium: submit a job, watch it finish with its timeline, see the VM pair fail over and be protected again', { skip, timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mr-dash-browser-'));
  const shots = process.env['DASHBOARD_SHOTS'] || join(dir, 'screenshots');
  mkdirSync(shots, { recursive: true });
  const local = startLocal(dir);
  t.after(async () => {
    await local.stop();
    const log = join(dir, 'data', 'logs', 'dashboard.log');
    if (existsSync(log)) writeFileSync(join(shots, 'dashboard.log'), readFileSync(log));
    if (!process.env['DASHBOARD_SHOTS']) t.diagnostic(`screenshots were in ${shots}`);
    rmSync(dir, { recursive: true, force: true });
  });
  await local.waitFor(/serving; press Ctrl-C to stop/, 200_000);
  const dash = (await local.waitFor(/dashboard ui\s+(http:\/\/\S+)/, 1000))[1]!;
  const [nodeA, nodeB] = [(await local.waitFor(/node a \(primary\)\s+(http:\/\/\S+)/, 1000))[1]!, (await local.waitFor(/node b \(backup\)\s+(http:\/\/\S+)/, 1000))[1]!];
  const pidA = Number((await local.waitFor(/pids storage \d+, a (\d+), b \d+/, 1000))[1]);

  // Inputs for the job (the data dir is an input root of mr local's coordinator).
  const inputs = join(dir, 'data', 'in');
  mkdirSync(inputs, { recursive: true });
  const files = [0, 1, 2, 3].map((i) => {
    const f = join(inputs, `part-${i}.txt`);
    writeFileSync(f, Array.from({ length: 2000 }, (_, k) => `whale ship sea ${k % 17} line ${i}`).join('\n'));
    return f;
  });

  // playwright-core gives every launch a fresh, empty profile (--user-data-dir in a temp dir of its own).
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`));
  const shot = (name: string, p: Page = page) => p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const nav = (name: string) => page.click(`#nav a:text-is("${name}")`);

  await page.goto(dash);
  await page.waitForSelector('body[data-ready]');
  await page.waitForSelector('#overview');

  // Submit a job from the page; its name is markup that must show as text.
  await nav('Jobs');
  const name = 'ui <b>job</b> & "quotes"';
  await page.selectOption('#submit-form select[name=app]', 'wc');
  await page.fill('#submit-form input[name=name]', name);
  await page.fill('#submit-form input[name=reduces]', '3');
  await page.fill('#submit-form textarea[name=inputs]', files.join('\n'));
  await page.fill('#submit-form input[name=output]', join(dir, 'out-ui'));
  await page.click('#submit-form button[type=submit]');
  await page.waitForURL(/\/jobs\/[A-Za-z0-9_-]+$/);
  await page.waitForSelector('#job-progress[data-pct="100"]', { timeout: 60_000 });
  assert.equal(await page.textContent('.job-name'), name);
  assert.equal(await page.locator('.job-name b').count(), 0, 'the name was not parsed as HTML');
  // Every task's attempt on the timeline (4 maps at most, 3 reduces), in worker lanes.
  await until('4 attempts on the timeline', 20_000, async () => Number((await page.locator('#timeline').getAttribute('data-attempts')) ?? 0) >= 4);
  assert.ok((await page.locator('#timeline rect.attempt').count()) >= 4);
  assert.ok((await page.locator('#timeline .lane-label').count()) >= 1);
  await shot('job');

  await nav('Jobs');
  await page.waitForSelector('#jobs-list table');
  await shot('jobs');

  // The VM pair: some requests, then protected with hashes agreeing at one instruction count.
  const client = new VmClient({ nodes: [nodeA, nodeB], vmId: 'vm1' });
  t.after(() => client.close());
  for (let i = 0; i < 30; i++) await client.incr('browser');
  await nav('VM pair');
  await page.waitForSelector('#vm-pair[data-protected="yes"]', { timeout: 30_000 });
  await page.waitForSelector('#vm-hash .hash-check[data-agree="yes"]', { timeout: 30_000 });
  await page.waitForSelector('[data-node="a"][data-role="primary"]');
  await shot('vm-protected');

  // Kill the primary: node b takes over, mr local brings a back as a new backup.
  process.kill(pidA, 'SIGKILL');
  await page.waitForSelector('#failovers .failover', { timeout: 30_000 });
  await page.waitForSelector('[data-node="b"][data-role="primary"]', { timeout: 30_000 });
  await page.waitForSelector('#vm-pair[data-protected="yes"]', { timeout: 60_000 });
  for (let i = 0; i < 10; i++) await client.incr('browser');
  const stages = await until('failover stages', 10_000, async () => Number((await page.locator('#failovers .failover').first().getAttribute('data-stages')) ?? 0) > 0)
    .then(() => page.locator('#failovers .failover').first().locator('.stage').allTextContents())
    .catch(() => [] as string[]);
  if (stages.length) t.diagnostic(`failover stages: ${stages.join(' | ')}`);
  else t.diagnostic('no failover trace with stages was received (the nodes do not export one yet)');
  await shot('vm-failover');

  await nav('Charts');
  await page.waitForSelector('#charts .chart canvas');
  await nav('Workers');
  await page.waitForSelector('#workers-table');
  await shot('workers');

  // Traces: the list, then the job's trace as a waterfall across processes.
  await nav('Traces');
  await page.waitForSelector('#traces-table');
  await shot('traces');
  await page.fill('input[name=name]', 'mr.task');
  await page.click('form.toolbar button[type=submit]');
  await page.waitForSelector('#traces-table a');
  await page.locator('#traces-table a').first().click();
  await page.waitForSelector('#waterfall .wf-row');
  assert.ok((await page.locator('#waterfall .wf-row').count()) >= 2);
  await shot('trace');

  await nav('Overview');
  await page.waitForSelector('#overview');
  await shot('overview');
  // Readable on a phone: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  assert.ok((await page.locator('html').evaluate((el: { scrollWidth: number }) => el.scrollWidth)) <= 391, 'the overview fits a phone screen');
  await shot('overview-phone');

  assert.deepEqual(problems, [], problems.join('\n'));
});
