/**
 * FT VM end to end, with real processes (`mr vm storage|node`) on this
 * machine, measured side by side in one run:
 *
 * - instructions per second of the compute-bound `cpu` guest on a primary
 *   alone vs. replicated to a backup (goal: replicated >= 0.95x), with
 *   primary and backup each pinned to its own core (`taskset`; the alone
 *   primary on the replicated primary's core) and unpinned, alternating
 *   alone and replicated runs so that both see the same machine;
 * - for the `kv` workload (unique incr requests): log bytes per second and
 *   per request, client latency p50/p99 with the output rule and without it
 *   (`--no-output-rule`, a measurement-only flag);
 * - time from kill -9 of the primary to the first answer from the new primary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { runLoad, VmClient } from '@mr/vmft-client';
import type { VmStatus } from '@mr/vmft-protocol';
import { median, type Benchmark, type BenchContext } from './benchmark.ts';

/** VM_FT_MR: another build's apps/cli/bin/mr.js (a before/after comparison: run the bench once with each, in turns). */
const MR = process.env['VM_FT_MR'] ?? fileURLToPath(new URL('../../apps/cli/bin/mr.js', import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'bench-vm-'));
  readonly children: ChildProcess[] = [];
  storageUrl = '';

  /** `core`: pin the process to this CPU with taskset. */
  async start(name: string, args: string[], core?: number): Promise<{ child: ChildProcess; url: string }> {
    const env = { ...process.env };
    delete env['MR_TOKEN'];
    const [cmd, argv] = core === undefined ? [process.execPath, [MR, ...args]] : ['taskset', ['-c', String(core), process.execPath, MR, ...args]];
    const child = spawn(cmd, argv, { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let out = '';
    child.stderr!.resume();
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]!);
        if (out.length > 1 << 20) out = out.slice(-4096);
      });
      child.on('exit', () => reject(new Error(`${name} exited early:\n${out.slice(-2000)}`)));
    });
    return { child, url };
  }

  async storage(): Promise<string> {
    this.storageUrl = (await this.start('storage', ['vm', 'storage', '--port', '0', '--data', join(this.dir, 'storage')])).url;
    return this.storageUrl;
  }

  node(id: string, guest: string, args: string[], core?: number) {
    return this.start(id, ['vm', 'node', '--id', id, '--port', '0', '--storage', this.storageUrl, '--guest', guest, '--log-level', 'warn', ...args], core);
  }

  async close(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await sleep(100);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function status(url: string): Promise<VmStatus | undefined> {
  try {
    const r = await request(`${url}/v1/vms/vm1`);
    return r.statusCode === 200 ? ((await r.body.json()) as VmStatus) : (await r.body.text(), undefined);
  } catch {
    return undefined;
  }
}

async function until(what: string, ms: number, pred: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const protectedPair = (p: string, b: string) =>
  until('the pair to be protected', 20_000, async () => {
    const [sp, sb] = await Promise.all([status(p), status(b)]);
    return !!sp && !!sb && sp.live && sp.log.acked > 0 && sb.epoch === sp.epoch && sb.log.sent > 0;
  });

async function metric(url: string, name: string, labels: string): Promise<number> {
  const r = await request(`${url}/metrics`);
  const text = await r.body.text();
  const re = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm');
  let sum = 0;
  for (const m of text.matchAll(re)) if (m[1]!.includes(labels)) sum += Number(m[2]);
  return sum;
}

/** CPU time (user + system, ms) a process has used, from /proc (0 where there is none). */
function cpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/**
 * Instructions per second of wall time, and per second of the primary's own
 * CPU time: on a machine others load, the second says what replication
 * costs the primary itself, whatever share of a core it was given.
 */
async function ips(url: string, ms: number, pid: number | undefined): Promise<{ ips: number; ipcs: number; icount: number }> {
  const s0 = await status(url);
  const c0 = cpuMs(pid);
  const t0 = performance.now();
  await sleep(ms);
  const s1 = await status(url);
  const t1 = performance.now();
  const c1 = cpuMs(pid);
  const d = s1!.icount - s0!.icount;
  return { ips: (d * 1000) / (t1 - t0), ipcs: c1 > c0 ? (d * 1000) / (c1 - c0) : 0, icount: s1!.icount };
}

interface CpuRun {
  ips: number;
  /** Instructions per second of the primary's CPU time. */
  ipcs: number;
  backupLag: number;
  lagLimit: number;
  /** The pair stayed protected (no false failover) through the run. */
  protectedThrough: boolean;
}

async function cpuThroughput(ctx: BenchContext, replicated: boolean, ms: number, pin: boolean): Promise<CpuRun> {
  const c = new Cluster();
  try {
    await c.storage();
    let backup: string | undefined;
    if (replicated) backup = (await c.node('b', 'cpu', ['--role', 'backup'], pin ? 1 : undefined)).url;
    const primary = await c.node('a', 'cpu', ['--role', 'primary', ...(backup ? ['--peer', backup] : [])], pin ? 0 : undefined);
    const p = primary.url;
    if (backup) await protectedPair(p, backup);
    else await until('the primary to be live', 20_000, async () => !!(await status(p))?.live);
    await sleep(500); // warm-up (JIT)
    const r = await ips(p, ms, primary.child.pid);
    const after = backup ? await status(p) : undefined;
    const lag = after ? after.peer.lagInstructions : 0;
    const lagLimit = backup ? await metric(p, 'ft_lag_limit_instructions', '') : 0;
    const protectedThrough = !backup || (after?.peer.state === 'connected' && after.epoch === 1);
    ctx.log(
      `cpu guest ${replicated ? 'replicated' : 'alone     '} ${pin ? 'pinned  ' : 'unpinned'}: ${(r.ips / 1e6).toFixed(1)} M instructions/s, ${(r.ipcs / 1e6).toFixed(1)} M per CPU-second of the primary` +
        (backup ? ` (backup trails by ${(lag / 1e6).toFixed(1)} M instructions, lag limit ${(lagLimit / 1e6).toFixed(1)} M)` : '') +
        (protectedThrough ? '' : ` WARNING: the pair lost protection (epoch ${after?.epoch}, peer ${after?.peer.state}): not a replicated figure`),
    );
    return { ips: r.ips, ipcs: r.ipcs, backupLag: lag, lagLimit, protectedThrough };
  } finally {
    await c.close();
  }
}

/** Alone and replicated runs, alternating (the machine's load changes over time): the ratio of the medians. */
async function cpuRatio(ctx: BenchContext, ms: number, trials: number, pin: boolean) {
  const alone: CpuRun[] = [];
  const repl: CpuRun[] = [];
  for (let i = 0; i < trials; i++) {
    alone.push(await cpuThroughput(ctx, false, ms, pin));
    repl.push(await cpuThroughput(ctx, true, ms, pin));
  }
  const unprotected = repl.filter((r) => !r.protectedThrough).length;
  const m = (runs: CpuRun[], k: 'ips' | 'ipcs') => median(runs.map((r) => r[k]));
  const ratio = m(repl, 'ips') / m(alone, 'ips');
  const cpuRatio = m(repl, 'ipcs') / m(alone, 'ipcs');
  ctx.log(
    `replicated / alone, ${pin ? 'pinned (taskset: primary core 0, backup core 1)' : 'unpinned'}: ${ratio.toFixed(3)} wall, ` +
      `${cpuRatio.toFixed(3)} per CPU-second of the primary (medians of ${trials}; goal >= 0.95)`,
  );
  return { alone: m(alone, 'ips'), repl: m(repl, 'ips'), ratio, cpuRatio, unprotected };
}

async function kvLoad(ctx: BenchContext, outputRule: boolean, requests: number, clients: number) {
  const c = new Cluster();
  try {
    await c.storage();
    const bn = await c.node('b', 'kv', ['--role', 'backup']);
    const pn = await c.node('a', 'kv', ['--role', 'primary', '--peer', bn.url, ...(outputRule ? [] : ['--drill-unsafe', '--no-output-rule'])]);
    const [b, p] = [bn.url, pn.url];
    await protectedPair(p, b);
    await runLoad({ nodes: [p, b], vmId: 'vm1', requests: 200, clients, key: 'warm' }); // warm-up
    const bytes0 = await metric(p, 'ft_log_bytes_total', 'direction="sent"');
    const cpu0 = [cpuMs(pn.child.pid), cpuMs(bn.child.pid), process.cpuUsage()] as const;
    const r = await runLoad({ nodes: [p, b], vmId: 'vm1', requests, clients, key: 'counter' });
    const client = process.cpuUsage(cpu0[2]);
    // CPU time per answered request (µs): what each part costs, whatever share of the machine it got.
    const perReq = (ms: number) => Math.round((ms * 1000) / Math.max(1, r.answered));
    const cpuUs = { primary: perReq(cpuMs(pn.child.pid) - cpu0[0]), backup: perReq(cpuMs(bn.child.pid) - cpu0[1]), client: perReq((client.user + client.system) / 1000) };
    const bytes = (await metric(p, 'ft_log_bytes_total', 'direction="sent"')) - bytes0;
    const after = await status(p);
    if (after?.peer.state !== 'connected' || after.epoch !== 1) {
      ctx.log(`WARNING: the pair lost protection during this run (epoch ${after?.epoch}, peer ${after?.peer.state}): a starved machine made a node suspect its peer; the figures below are not replicated ones`);
    }
    const out = {
      p50: r.latencyMs.p50,
      p99: r.latencyMs.p99,
      rps: r.throughput,
      logBytesPerSec: Math.round((bytes * 1000) / r.elapsedMs),
      logBytesPerReq: Math.round(bytes / r.answered),
      failed: r.failed,
      cpuUs,
    };
    ctx.log(`kv ${clients} client(s), output rule ${outputRule ? 'on ' : 'OFF'}: p50 ${out.p50} ms, p99 ${out.p99} ms, ${out.rps.toFixed(0)} req/s, log ${out.logBytesPerReq} B/request, ${(out.logBytesPerSec / 1024).toFixed(1)} KiB/s; CPU per request: primary ${cpuUs.primary} µs, backup ${cpuUs.backup} µs, client ${cpuUs.client} µs`);
    return out;
  } finally {
    await c.close();
  }
}

async function failoverTime(ctx: BenchContext): Promise<number> {
  const c = new Cluster();
  try {
    await c.storage();
    const b = await c.node('b', 'kv', ['--role', 'backup']);
    const a = await c.node('a', 'kv', ['--role', 'primary', '--peer', b.url]);
    await protectedPair(a.url, b.url);
    const client = new VmClient({ nodes: [a.url, b.url], vmId: 'vm1', retryDelayMs: 5, attemptTimeoutMs: 1000 });
    try {
      for (let i = 0; i < 100; i++) await client.incr('x');
      const t0 = performance.now();
      a.child.kill('SIGKILL');
      for (;;) {
        const r = await client.incr('x');
        if (r.node === b.url) {
          const ms = performance.now() - t0;
          ctx.log(`kill -9 of the primary -> first answer from the new primary: ${ms.toFixed(0)} ms (${r.attempts} attempts)`);
          return ms;
        }
      }
    } finally {
      await client.close();
    }
  } finally {
    await c.close();
  }
}

function cpuSummary(pinned: Awaited<ReturnType<typeof cpuRatio>>, unpinned: Awaited<ReturnType<typeof cpuRatio>>): Record<string, number | string> {
  return {
    ips_alone_M_pinned: +(pinned.alone / 1e6).toFixed(2),
    ips_replicated_M_pinned: +(pinned.repl / 1e6).toFixed(2),
    replicated_over_alone_pinned: +pinned.ratio.toFixed(3),
    replicated_over_alone_per_primary_cpu_second_pinned: +pinned.cpuRatio.toFixed(3),
    ips_alone_M_unpinned: +(unpinned.alone / 1e6).toFixed(2),
    ips_replicated_M_unpinned: +(unpinned.repl / 1e6).toFixed(2),
    replicated_over_alone_unpinned: +unpinned.ratio.toFixed(3),
    replicated_over_alone_per_primary_cpu_second_unpinned: +unpinned.cpuRatio.toFixed(3),
    replicated_runs_unprotected: pinned.unprotected + unpinned.unprotected,
    replicated_over_alone_goal: '>= 0.95 pinned',
  };
}

export const vmFt: Benchmark = {
  name: 'vm-ft',
  description: 'FT VM over real processes: replicated vs alone IPS, kv log bytes, latency with/without the output rule, failover time',
  async run(ctx): Promise<Record<string, number | string>> {
    // VM_FT_ONLY=kv (8 clients, rule on; VM_FT_KV_REQUESTS), kv-off, cpu or failover runs one part alone (for looking into it); VM_FT_CPU_TRIALS alone/replicated pairs (default 3, quick 1).
    const only = process.env['VM_FT_ONLY'];
    if (only === 'kv-off') return { p: JSON.stringify(await kvLoad(ctx, false, 1000, 8)) };
    if (only === 'kv') return { p: JSON.stringify(await kvLoad(ctx, true, Number(process.env['VM_FT_KV_REQUESTS'] ?? 3000), 8)) };
    if (only === 'failover') {
      // FAILOVER_TRIALS (default 5) kill -9 trials; the median is the goal's figure (<= 100 ms).
      const fo: number[] = [];
      for (let i = 0; i < Number(process.env['FAILOVER_TRIALS'] ?? 5); i++) fo.push(await failoverTime(ctx));
      return { failover_to_first_answer_ms_median: +median(fo).toFixed(0), failover_to_first_answer_ms_all: fo.map((x) => x.toFixed(0)).join(' '), goal: '<= 100 ms median' };
    }
    const ms = ctx.quick ? 1500 : 3000;
    const cpuTrials = Number(process.env['VM_FT_CPU_TRIALS'] ?? (ctx.quick ? 1 : 3));
    const pinned = await cpuRatio(ctx, ms, cpuTrials, true);
    const unpinned = await cpuRatio(ctx, ms, cpuTrials, false);
    if (only === 'cpu') return cpuSummary(pinned, unpinned);
    const n = ctx.quick ? 1000 : 3000;
    const on1 = await kvLoad(ctx, true, n / 2, 1);
    const off1 = await kvLoad(ctx, false, n / 2, 1);
    const on8 = await kvLoad(ctx, true, n, 8);
    const off8 = await kvLoad(ctx, false, n, 8);
    const trials = ctx.quick ? 1 : 5;
    const fo: number[] = [];
    for (let i = 0; i < trials; i++) fo.push(await failoverTime(ctx));
    return {
      ...cpuSummary(pinned, unpinned),
      kv_log_bytes_per_request: on8.logBytesPerReq,
      kv_log_bytes_per_sec: on8.logBytesPerSec,
      kv_rps_8_clients: +on8.rps.toFixed(0),
      kv_rps_goal: '>= 5000 (8 clients, output rule on)',
      kv_cpu_us_per_request_primary: on8.cpuUs.primary,
      kv_cpu_us_per_request_backup: on8.cpuUs.backup,
      kv_cpu_us_per_request_client: on8.cpuUs.client,
      latency_p50_ms_1_client_rule_on: on1.p50,
      latency_p99_ms_1_client_rule_on: on1.p99,
      latency_p50_ms_1_client_rule_off: off1.p50,
      latency_p99_ms_1_client_rule_off: off1.p99,
      latency_p50_ms_8_clients_rule_on: on8.p50,
      latency_p99_ms_8_clients_rule_on: on8.p99,
      latency_p50_ms_8_clients_rule_off: off8.p50,
      latency_p99_ms_8_clients_rule_off: off8.p99,
      failover_to_first_answer_ms_median: +median(fo).toFixed(0),
      failover_to_first_answer_ms_max: +Math.max(...fo).toFixed(0),
      failover_goal: 'median <= 100 ms (broken log stream detected, not only silence)',
    };
  },
};
