/**
 * The dashboard part of `mr local`: one more supervised process (`mr
 * dashboard`), started once the others listen (it is given their URLs), on
 * the port chosen before any of them started, because every other process
 * exports its traces to it (OTEL_EXPORTER_OTLP_ENDPOINT, see otelEnv).
 */
import { join } from 'node:path';
import { Supervised } from './supervisor.ts';
import type { LocalEnv, StartedSection } from './section.ts';

export interface DashboardSectionOptions {
  host: string;
  port: number;
  coordinator?: string | undefined;
  vmNodes: string[];
  storage?: string | undefined;
  vmId?: string | undefined;
}

/**
 * The environment that makes a child export its spans to the dashboard at
 * `url`: unless the user points OTLP elsewhere already; batches every 500 ms
 * (the SDK's default 5 s is slow for a live view); with a client token, the
 * exporter sends it (the receiver needs it like every client route).
 */
export function otelEnv(env: NodeJS.ProcessEnv, url: string): NodeJS.ProcessEnv {
  if (env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || env['OTEL_SDK_DISABLED'] === 'true') return env;
  const token = env['MR_TOKEN'];
  return {
    ...env,
    OTEL_EXPORTER_OTLP_ENDPOINT: url,
    OTEL_BSP_SCHEDULE_DELAY: env['OTEL_BSP_SCHEDULE_DELAY'] ?? '500',
    ...(token && !env['OTEL_EXPORTER_OTLP_HEADERS'] ? { OTEL_EXPORTER_OTLP_HEADERS: `authorization=${encodeURIComponent(`Bearer ${token}`)}` } : {}),
  };
}

export async function startDashboardSection(env: LocalEnv, o: DashboardSectionOptions): Promise<StartedSection> {
  const logs = join(env.data, 'logs');
  let url = '';
  let waiter: { resolve(u: string): void; reject(e: Error): void } | undefined;
  let stopping = false;
  const sup = new Supervised({
    name: 'dashboard',
    args: () => [
      'dashboard', '--host', o.host, '--port', String(o.port),
      ...(o.coordinator ? ['--coordinator', o.coordinator] : []),
      ...o.vmNodes.flatMap((u) => ['--vm', u]),
      ...(o.storage ? ['--storage', o.storage] : []),
      ...(o.vmId ? ['--vm-id', o.vmId] : []),
    ],
    cwd: env.data,
    // Its own spans would only loop back into itself.
    env: { ...env.childEnv, OTEL_SDK_DISABLED: 'true' },
    logFile: join(logs, 'dashboard.log'),
    onLine: (line) => {
      const m = /^dashboard listening on (https?:\/\/\S+)/.exec(line);
      if (!m) return;
      url = m[1]!;
      waiter?.resolve(url);
      waiter = undefined;
    },
    onExit: (code, signal, restarting) => {
      if (waiter) waiter.reject(new Error(`the dashboard exited (code ${code}, signal ${signal}) before listening; see ${join(logs, 'dashboard.log')}`));
      waiter = undefined;
      if (restarting && url) setTimeout(() => stopping || env.say(`dashboard exited (code ${code}, signal ${signal}); restarting it`), 300).unref();
    },
  });
  try {
    await new Promise<string>((resolve, reject) => (waiter = { resolve, reject }));
  } catch (err) {
    stopping = true;
    await sup.stop();
    throw err;
  }
  return {
    name: 'dashboard',
    urls: [{ label: 'ui', url }],
    hints: [`receives the others' traces (OTLP at ${url}/v1/traces) and scrapes their /metrics; log in ${join(logs, 'dashboard.log')}`],
    halt: () => {
      stopping = true;
      sup.noRestart();
    },
    stop: async () => {
      stopping = true;
      await sup.stop();
    },
  };
}
