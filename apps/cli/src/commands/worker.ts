import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EXIT, type CliContext } from '../context.ts';
import { parse, durationMs, intOption, bytesOption, UsageError, coordinatorUrl } from '../args.ts';
import type { Registry } from '@mr/observability';

export const summary = 'run a MapReduce worker that polls a coordinator for tasks';

export const usage = `usage: mr worker --coordinator URL [--slots 1] [--work-dir DIR] [options]

Registers with the coordinator, long-polls it for map and reduce tasks and
runs them. Exits 0 when the coordinator says all work is done (a coordinator
started with --exit-when-done), 1 when the coordinator has been unreachable for
--coordinator-wait (default 5m): a coordinator that restarts or stops for a
while is waited for, with jittered backoff (at most 2 s between tries), and a
task finished meanwhile is reported when it is back.

options:
  --coordinator URL     coordinator base URL, e.g. http://127.0.0.1:7070 (required; default: MR_COORDINATOR)
  --slots N             tasks run at once (default 1, max 64)
  --work-dir DIR        directory the apps' side files go to (default: the current directory)
  --coordinator-wait DUR  exit after the coordinator was unreachable this long (default 5m;
                        --unreachable is the same option)
  --name NAME           a label shown in 'mr status'
  --plugins DIR         load user apps from the modules in DIR (default: $MR_PLUGIN_DIR)
  --metrics-port P      serve this worker's Prometheus metrics at http://HOST:P/metrics
                        (0: a free port; the URL is printed); default: no metrics server
  --metrics-host H      address of that server (default 127.0.0.1; another needs MR_TOKEN)
  --shuffle-host H      address of this worker's map-output server (worker shuffle: jobs with
                        shuffle=worker keep map output on the worker that made it and reduces
                        fetch it from there); default 127.0.0.1, another needs MR_TOKEN
  --shuffle-port P      its port (default 0: a free one)
  --shuffle-advertise URL  the base URL reduces fetch from (default http://HOST:PORT; required
                        with a wildcard --shuffle-host such as 0.0.0.0)
  --shuffle-dir DIR     where map output is kept (default: the OS temp dir); the worker makes
                        worker-<pid>-<random> in it, deletes it at exit, and removes those of
                        dead workers at start
  --shuffle-max-bytes SIZE  map output kept at most (default 10GiB): past it served maps go to
                        other workers; a job's output is deleted once the job is over
  --no-shuffle-server   serve no map output (served maps go to other workers)
  -v, --verbose         log every task (default: only warnings and errors)

environment: MR_WORKER_TOKEN (the worker credential the coordinator was given; required
when MR_TOKEN is set, and must differ from it: a client token does not make a worker),
MR_COORDINATOR (default --coordinator), OTEL_EXPORTER_OTLP_ENDPOINT (traces).`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parse('worker', argv, {
    coordinator: { type: 'string' },
    slots: { type: 'string' },
    'work-dir': { type: 'string' },
    unreachable: { type: 'string' },
    'coordinator-wait': { type: 'string' },
    name: { type: 'string' },
    plugins: { type: 'string' },
    'metrics-port': { type: 'string' },
    'metrics-host': { type: 'string' },
    'shuffle-host': { type: 'string' },
    'shuffle-port': { type: 'string' },
    'shuffle-advertise': { type: 'string' },
    'shuffle-dir': { type: 'string' },
    'shuffle-max-bytes': { type: 'string' },
    'no-shuffle-server': { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
  });
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const v = args.values;
  const coordinator = coordinatorUrl(v.coordinator, ctx.env, 'mr worker');
  const slots = intOption(v.slots, '--slots', 1, 1, 64);
  const workerToken = ctx.env['MR_WORKER_TOKEN'] || undefined;
  if (ctx.env['MR_TOKEN'] && !workerToken) throw new UsageError('mr worker: MR_TOKEN is set but MR_WORKER_TOKEN is not: set the worker credential too (it must differ from MR_TOKEN)');
  if (workerToken && workerToken === ctx.env['MR_TOKEN']) throw new UsageError('mr worker: MR_WORKER_TOKEN must differ from MR_TOKEN (a client must not hold the worker credential)');
  if (v.unreachable !== undefined && v['coordinator-wait'] !== undefined) throw new UsageError('mr worker: give --coordinator-wait or --unreachable, not both');
  const wait = v['coordinator-wait'] ?? v.unreachable;
  const unreachableMs = wait === undefined ? 300_000 : durationMs(wait, v.unreachable !== undefined ? '--unreachable' : '--coordinator-wait');
  const metricsPort = v['metrics-port'] === undefined ? undefined : intOption(v['metrics-port'], '--metrics-port', 0, 0, 65535);
  const metricsHost = v['metrics-host'] ?? '127.0.0.1';
  if (v['metrics-host'] !== undefined && metricsPort === undefined) throw new UsageError('mr worker: --metrics-host needs --metrics-port');
  const shuffleHost = v['shuffle-host'] ?? '127.0.0.1';
  const shufflePort = intOption(v['shuffle-port'], '--shuffle-port', 0, 0, 65535);
  const shuffleMaxBytes = bytesOption(v['shuffle-max-bytes'], '--shuffle-max-bytes', 10 * 1024 ** 3, 1, 2 ** 50);
  const shuffleDir = resolve(v['shuffle-dir'] ?? join(tmpdir(), 'mr-shuffle'));
  if (!v['no-shuffle-server']) {
    const { checkBind } = await import('@mr/service-kit');
    const refused = checkBind(shuffleHost, ctx.env['MR_TOKEN'] || undefined);
    if (refused && v['shuffle-host'] !== undefined) throw new UsageError(`mr worker: --shuffle-host: ${refused}`);
  }
  const pluginDir = v.plugins ?? ctx.env['MR_PLUGIN_DIR'];
  const pluginPath = pluginDir ? resolve(pluginDir) : undefined;
  let cwd = process.cwd();
  if (v['work-dir']) {
    cwd = resolve(v['work-dir']);
    mkdirSync(cwd, { recursive: true });
    process.chdir(cwd);
  }

  const { startCommandTelemetry } = await import('../telemetry.ts');
  const telemetry = await startCommandTelemetry('worker', ctx.env, 'mr-worker', v.name);
  const { Worker, stderrLog, hasWorkerConfigError } = await loadWorker();
  if (pluginPath) {
    const apps = await import('@mr/mapreduce-apps');
    try {
      await apps.loadPluginApps(pluginPath);
    } catch (err) {
      ctx.stderr.write(`mr worker: ${String((err as { message?: unknown }).message)}\n`);
      await telemetry.shutdown();
      return EXIT.USAGE;
    }
  }

  // The worker's own metrics: a /metrics port of its own (the coordinator only knows what workers report).
  let metrics: { registry: Registry; close(): Promise<void> } | undefined;
  if (metricsPort !== undefined) {
    const { checkBind } = await import('@mr/service-kit');
    const refused = checkBind(metricsHost, ctx.env['MR_TOKEN'] || undefined);
    if (refused) throw new UsageError(`mr worker: --metrics-host: ${refused}`);
    const { createRegistry, serveMetrics } = await import('@mr/observability');
    const registry = createRegistry({ service: 'mr-worker' });
    const server = await serveMetrics(registry, { host: metricsHost, port: metricsPort });
    ctx.stdout.write(`mr worker ${process.pid}: metrics on ${server.url}/metrics\n`);
    metrics = { registry, close: () => server.close() };
  }

  let worker;
  try {
    worker = new Worker({
      registry: metrics?.registry,
      coordinator,
      token: workerToken,
      workerToken,
      slots,
      ...(v['no-shuffle-server']
        ? {}
        : { shuffle: { host: shuffleHost, port: shufflePort, dir: shuffleDir, maxBytes: shuffleMaxBytes, ...(v['shuffle-advertise'] ? { advertise: v['shuffle-advertise'] } : {}) } }),
      cwd,
      unreachableMs,
      pluginDir: pluginPath,
      ...(v.name ? { name: v.name } : {}),
      log: stderrLog(v.verbose ? 'debug' : 'warn', `mr worker ${process.pid}`),
    });
  } catch (err) {
    if (hasWorkerConfigError(err)) throw new UsageError(`mr worker: ${String((err as { message?: unknown }).message)}`);
    throw err;
  }
  const onSignal = (sig: string) => void worker.stop(`interrupted by ${sig}`);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const exit = await worker.run();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (v.verbose) ctx.stderr.write(`mr worker ${process.pid}: exiting (${exit.reason}); ${worker.tasksDone} task(s) run\n`);
  await telemetry.shutdown();
  await metrics?.close();
  // App code of an abandoned task (e.g. a sleeping lab app) must not keep the process alive.
  setTimeout(() => process.exit(exit.code), 500).unref();
  return exit.code;
}

async function loadWorker() {
  const m = await import('@mr/worker');
  const { hasCode } = await import('@mr/errors');
  return { Worker: m.Worker, stderrLog: m.stderrLog, hasWorkerConfigError: (e: unknown) => hasCode(e, m.ERR_WORKER_CONFIG.code) };
}
