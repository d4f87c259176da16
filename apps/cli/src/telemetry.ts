import type { TelemetryHandle } from '@mr/observability/telemetry';
import { UsageError } from './args.ts';

/**
 * Starts OpenTelemetry for a command (before fastify/undici are imported):
 * `service` is the same for every instance of it (README "Traces"),
 * `instance` tells them apart. A bad OTEL_* setting is a usage error.
 */
export async function startCommandTelemetry(command: string, env: Record<string, string | undefined>, service: string, instance?: string): Promise<TelemetryHandle> {
  const { startTelemetry, ERR_OTEL_CONFIG } = await import('@mr/observability/telemetry');
  try {
    return await startTelemetry({ serviceName: service, instanceId: instance, env });
  } catch (err) {
    if ((err as { code?: string }).code === ERR_OTEL_CONFIG.code) throw new UsageError(`mr ${command}: ${(err as Error).message}`);
    throw err;
  }
}
