import { EXIT, type CliContext } from '../context.ts';
import { parse, durationMs, intOption, UsageError } from '../args.ts';

export const summary = 'run the dashboard: a live web UI of jobs, workers, the FT VM pair, charts and traces';

export const usage = `usage: mr dashboard [--coordinator URL] [--vm URL]... [--storage URL] [--vm-id vm1]
                    [--host 127.0.0.1] [--port 7074] [--poll 1s] [--scrape 2s]

Serves a web UI (open the printed URL) that shows, live: the coordinator,
jobs with their progress and task timeline (submit and cancel from the page),
workers, the FT VM pair (roles, epochs, instruction counts, backup lag, held
outputs, state hashes compared at equal instruction counts, failovers with
their stages), charts of key rates from its own scrapes of the services'
/metrics, and traces it receives itself over OTLP/HTTP (POST /v1/traces,
protobuf or JSON: point OTEL_EXPORTER_OTLP_ENDPOINT at the dashboard's URL).
Prints "dashboard listening on URL" once it accepts connections.

options:
  --coordinator URL   the MapReduce coordinator (default: $MR_COORDINATOR)
  --vm URL            a node of the FT VM (repeatable, or comma-separated)
  --storage URL       the VM's storage node (its health and /metrics)
  --vm-id ID          the VM the nodes run (default vm1)
  --host HOST         address to bind (default 127.0.0.1; others need MR_TOKEN)
  --port PORT         port (default 7074; 0 picks a free one)
  --poll DUR          how often the API is polled (default 1s)
  --scrape DUR        how often /metrics is scraped (default 2s; 300 points are kept)
  --max-traces N      traces kept in memory, oldest dropped first (default 2000)
  --max-spans N       spans kept in memory (default 50000)
  --log-level LEVEL   fatal|error|warn|info|debug|trace|silent (default warn)

environment: MR_TOKEN (client token: sent to the services; with it the
dashboard asks for it too, at /login, and may bind to other addresses).`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parse('dashboard', argv, {
    coordinator: { type: 'string' },
    vm: { type: 'string', multiple: true },
    storage: { type: 'string' },
    'vm-id': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    poll: { type: 'string' },
    scrape: { type: 'string' },
    'max-traces': { type: 'string' },
    'max-spans': { type: 'string' },
    'log-level': { type: 'string' },
  });
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const v = args.values;
  const url = (s: string, what: string): string => {
    try {
      const u = new URL(s);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
      return u.origin;
    } catch {
      throw new UsageError(`mr dashboard: ${what}: "${s}" is not an http(s) URL`);
    }
  };
  const coordinatorArg = v.coordinator ?? ctx.env['MR_COORDINATOR'];
  const coordinator = coordinatorArg ? url(coordinatorArg, '--coordinator') : undefined;
  const vmNodes = (v.vm ?? []).flatMap((x) => x.split(',')).filter(Boolean).map((x) => url(x, '--vm'));
  if (vmNodes.length > 8) throw new UsageError('mr dashboard: --vm: at most 8 nodes');
  const storage = v.storage ? url(v.storage, '--storage') : undefined;
  if (!coordinator && vmNodes.length === 0) throw new UsageError('mr dashboard: give --coordinator URL, --vm URL, or both');
  const vmId = v['vm-id'] ?? 'vm1';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(vmId)) throw new UsageError('mr dashboard: --vm-id: 1-64 letters, digits, _ or -');
  const host = v.host ?? '127.0.0.1';
  const port = intOption(v.port, '--port', 7074, 0, 65535);
  const pollMs = v.poll === undefined ? 1000 : durationMs(v.poll, '--poll');
  const scrapeMs = v.scrape === undefined ? 2000 : durationMs(v.scrape, '--scrape');
  if (pollMs < 100 || scrapeMs < 100) throw new UsageError('mr dashboard: --poll and --scrape must be at least 100ms');
  const maxTraces = intOption(v['max-traces'], '--max-traces', 2000, 1, 1_000_000);
  const maxSpans = intOption(v['max-spans'], '--max-spans', 50_000, 1, 10_000_000);
  const logLevel = v['log-level'] ?? 'warn';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw new UsageError(`mr dashboard: --log-level: unknown level "${logLevel}"`);

  const { checkBind } = await import('@mr/service-kit');
  const token = ctx.env['MR_TOKEN'] || undefined;
  const refused = checkBind(host, token);
  if (refused) throw new UsageError(`mr dashboard: ${refused}`);

  const { startTelemetry } = await import('@mr/observability/telemetry');
  // The dashboard's own spans would land in itself: only when the user points it elsewhere.
  const telemetry = await startTelemetry({ serviceName: 'mr-dashboard', env: { ...ctx.env, ...(ctx.env['MR_DASHBOARD_OTEL'] ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' }) } });
  const dash = await import('@mr/dashboard');
  if (!dash.isBuilt()) {
    ctx.stderr.write('mr dashboard: building the UI (esbuild)...\n');
    await dash.buildUi();
  }
  let running;
  try {
    running = await dash.startDashboard({
      host,
      port,
      coordinator,
      vmNodes,
      storage,
      vmId,
      token,
      pollMs,
      scrapeMs,
      traceLimits: { maxTraces, maxSpans },
      logLevel: logLevel === 'silent' ? false : logLevel,
      telemetry: telemetry.enabled,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    ctx.stderr.write(`mr dashboard: cannot start: ${e.message}\n`);
    await telemetry.shutdown();
    return e.code === 'EADDRINUSE' || e.code === 'EACCES' ? EXIT.USAGE : EXIT.FAILED;
  }
  ctx.stdout.write(`dashboard listening on ${running.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await running.close();
  await telemetry.shutdown();
  return EXIT.OK;
}
