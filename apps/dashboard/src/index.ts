/**
 * @mr/dashboard: the cluster's web UI. `startDashboard` builds the service,
 * starts its collectors and listens; `mr dashboard` and `mr local` call it.
 */
import { buildDashboard, type Dashboard, type DashboardOptions } from './app.ts';

export { buildDashboard, DEFAULTS, type Dashboard, type DashboardOptions } from './app.ts';
export { DEFAULT_TRACE_LIMITS, type TraceLimits } from './otlp/store.ts';
export { buildUi, isBuilt } from './build-ui.ts';

export interface RunningDashboard extends Dashboard {
  url: string;
  close(): Promise<void>;
}

export async function startDashboard(o: DashboardOptions & { host: string; port: number }): Promise<RunningDashboard> {
  const d = await buildDashboard(o);
  const address = await d.app.listen({ host: o.host, port: o.port });
  d.start();
  return { ...d, url: address, close: () => d.app.close() };
}
