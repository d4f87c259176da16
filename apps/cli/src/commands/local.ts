import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { EXIT, type CliContext } from '../context.ts';
import { parse, intOption, UsageError } from '../args.ts';
import type { LocalEnv, StartedSection } from '../local/section.ts';
import { otelEnv, startDashboardSection } from '../local/dashboard.ts';
import { freePorts } from '../local/ports.ts';

export const summary = 'run the whole cluster on this machine (coordinator, workers, FT VM pair; --demo runs a job and a VM workload)';

export const usage = `usage: mr local [--workers 3] [--port 7070] [--data ./data] [--demo | --no-demo] [--no-vm]
                [--no-dashboard]

Starts on this machine, each as a separate process, a coordinator and N
workers (restarted if they die), a fault-tolerant VM: a storage node and
a primary/backup pair running the kv guest, and the dashboard (a web UI
of all of it, which also receives every process's traces over OTLP unless
OTEL_EXPORTER_OTLP_ENDPOINT points elsewhere). Prints their URLs and keeps
serving until Ctrl-C. State goes under --data (DATA/mapreduce, DATA/vm),
logs in DATA/logs. With --demo (the default of \`npm start\`) it generates a
small corpus of books under DATA/demo, runs a word count over it and prints
where the output is and the top words; then, once the VM pair is protected,
sends 200 incr requests from 4 clients and prints the counter, the latencies
and both nodes' state hash at the same instruction.

A VM node that dies is not restarted in its old role: the survivor takes
over, and the dead node comes back as a new backup that joins it by state
transfer (mr vm node --join), so the pair is protected again. A node that
stopped serving (it lost test-and-set) is restarted the same way. The nodes
suspect a failure after 1 s of silence (mr vm node's default is a few
hundred ms), so that a busy machine does not cause spurious failovers.

options:
  --workers N        worker processes (default 3)
  --port P           coordinator port (default 7070; 0 picks free ports for
                     everything); the VM's storage node listens on P+1, node a
                     (first primary) on P+2, node b (first backup) on P+3,
                     the dashboard on P+4, worker i's /metrics on P+4+i
  --data DIR         state, logs and demo files (default ./data)
  --input-root DIR   another directory jobs may read inputs from (repeatable;
                     the data dir and the current directory always are)
  --demo             run the demos once the cluster is up (--no-demo: don't)
  --no-vm            don't start the FT VM (storage node, primary, backup)
  --no-dashboard     don't start the dashboard (and don't export traces to it)

environment: MR_TOKEN (bearer token for every service; without it they
bind to 127.0.0.1 only and need no token).`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parse('local', argv, {
    workers: { type: 'string' },
    port: { type: 'string' },
    data: { type: 'string' },
    'input-root': { type: 'string', multiple: true },
    demo: { type: 'boolean' },
    'no-demo': { type: 'boolean' },
    'no-vm': { type: 'boolean' },
    'no-dashboard': { type: 'boolean' },
  });
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const v = args.values;
  if (v.demo && v['no-demo']) throw new UsageError('mr local: --demo and --no-demo exclude each other');
  const workers = intOption(v.workers, '--workers', 3, 1, 64);
  const port = intOption(v.port, '--port', 7070, 0, 65535);
  const vm = v['no-vm'] !== true;
  const dashboard = v['no-dashboard'] !== true;
  if (port > 65531 - workers) throw new UsageError(`mr local: --port must be at most ${65531 - workers} (the VM and the dashboard use port+1..port+4, the workers' metrics port+5..port+${4 + workers})`);
  const data = resolve(v.data ?? './data');
  mkdirSync(data, { recursive: true });
  const demo = v.demo === true;

  const host = '127.0.0.1';
  // Every port is fixed before anything starts, so that the sections start side by side:
  // each knows the others' URLs (the dashboard watches them; they export traces to it).
  const free = port === 0 ? await freePorts(host, 5 + workers) : [];
  const ports = port === 0
    ? { coordinator: free[0]!, storage: free[1]!, a: free[2]!, b: free[3]!, dashboard: free[4]!, workerMetrics: free.slice(5) }
    : { coordinator: port, storage: port + 1, a: port + 2, b: port + 3, dashboard: port + 4, workerMetrics: Array.from({ length: workers }, (_, i) => port + 5 + i) };
  const url = (p: number) => `http://${host}:${p}`;
  const baseEnv = withRoleTokens({ ...process.env, ...ctx.env, FORCE_COLOR: '0' } as NodeJS.ProcessEnv);
  const env: LocalEnv = {
    ctx,
    data,
    // Every process exports its spans to the dashboard.
    childEnv: dashboard ? otelEnv(baseEnv, url(ports.dashboard)) : baseEnv,
    say: (line) => ctx.stdout.write(`${line}\n`),
  };
  const sections: StartedSection[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const s of sections) s.halt?.();
      for (const s of [...sections].reverse()) await s.stop().catch(() => {});
    })());
  let interrupted!: () => void;
  let isInterrupted = false;
  const interruptedP = new Promise<void>((r) => (interrupted = r)).then(() => {
    isInterrupted = true;
  });
  const onSignal = () => {
    env.say('\nshutting down...');
    interrupted();
    for (const s of sections) s.halt?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // The sections start side by side (each one's processes in its own order),
    // and are listed, demoed and stopped in this order.
    const starting: Promise<StartedSection>[] = [];
    const { startMapReduce } = await import('../local/mapreduce.ts');
    starting.push(
      startMapReduce(env, {
        workers,
        port: ports.coordinator,
        workerMetricsPorts: ports.workerMetrics,
        host,
        inputRoots: [process.cwd(), ...(v['input-root'] ?? []).map((r) => resolve(r))],
      }),
    );
    let vmId: string | undefined;
    if (vm) {
      const { startVm, VM_ID } = await import('../local/vm.ts');
      vmId = VM_ID;
      starting.push(startVm(env, { ports, host }));
    }
    if (dashboard) {
      starting.push(
        startDashboardSection(env, {
          host,
          port: ports.dashboard,
          coordinator: url(ports.coordinator),
          vmNodes: vm ? [url(ports.a), url(ports.b)] : [],
          storage: vm ? url(ports.storage) : undefined,
          vmId,
        }),
      );
    }
    const started = await Promise.allSettled(starting);
    for (const r of started) if (r.status === 'fulfilled') sections.push(r.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    env.say(`mr local: data in ${data}`);
    for (const s of sections) {
      for (const u of s.urls) env.say(`  ${`${s.name} ${u.label}`.padEnd(28)} ${u.url}`);
      for (const h of s.hints ?? []) env.say(`    ${h}`);
    }
    let ok = true;
    if (demo) {
      for (const s of sections) {
        if (s.demo && !isInterrupted) ok = (await Promise.race([s.demo(), interruptedP.then(() => true)])) && ok;
      }
      if (!ok) env.say('demo: FAILED (the cluster keeps running; see the logs)');
    }
    env.say('serving; press Ctrl-C to stop');
    await interruptedP;
    await stopAll();
    env.say('stopped');
    return EXIT.OK;
  } catch (err) {
    if (isInterrupted) {
      // Ctrl-C while starting: the children got it too; that is no failure.
      await stopAll();
      env.say('stopped');
      return EXIT.OK;
    }
    ctx.stderr.write(`mr local: ${(err as Error).message}\n`);
    await stopAll();
    return EXIT.FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * With MR_TOKEN set, the children need the role credentials too (a client
 * token never makes its holder a worker): a random MR_WORKER_TOKEN is made
 * for this run unless the user gave one.
 */
function withRoleTokens(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (!env['MR_TOKEN'] || env['MR_WORKER_TOKEN']) return env;
  return { ...env, MR_WORKER_TOKEN: randomBytes(24).toString('base64url') };
}
