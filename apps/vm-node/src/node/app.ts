import type { Registry } from 'prom-client';
import { buildInfo, createService, type BuildInfo, type Service } from '@mr/service-kit';
import { dualProtocolServerFactory, type ConnectionLimits } from '../dual-server.ts';
import { registerLogReceiver } from '../log-channel.ts';
import { VmDriver, type VmNodeOptions } from './driver.ts';
import requestRoutes from './routes/requests.ts';
import statusRoutes from './routes/status.ts';
import joinRoutes from './routes/join.ts';

export interface NodeAppOptions extends Omit<VmNodeOptions, 'log' | 'registry'> {
  registry: Registry;
  logLevel?: string | false;
  telemetry?: boolean;
  /** Version and commit for GET /v1/version and the OpenAPI document. Default: package.json's version, MR_GIT_COMMIT. */
  build?: BuildInfo;
  /** Epoch a primary asks test-and-set for at start. */
  startEpoch?: number;
  /** Connection cap and timeouts of the node's port (default DEFAULT_CONNECTION_LIMITS). */
  connectionLimits?: Partial<ConnectionLimits> | undefined;
}

/**
 * A primary or backup node as a Fastify instance (HTTP/2 cleartext and
 * HTTP/1.1 on one port); the routes are in routes/ (and ../routes/log.ts):
 *
 *   POST /v1/vms/:id/sessions   open a client session (a guest request) → 201 {session, maxOutstanding, maxSessions}
 *   DELETE /v1/vms/:id/sessions/:session   close it → 204
 *   POST /v1/vms/:id/requests   client request {session, seq, ackBelow, op, key, value?} → {value} once the
 *                               output rule allows; 503 {live, reason} elsewhere; 4xx session errors
 *   GET  /v1/vms/:id            role, live, epoch, icount, log seqs, outputs held, peer, state hash
 *   POST /v1/vms/:id/log        the log channel (h2c stream, binary frames; backup side)     [peer credential]
 *   POST /v1/vms/:id/join       a new backup asks the live primary for state transfer         [peer credential]
 *                               (only from a configured peer URL: --peers)
 *   GET  /healthz, /metrics
 *
 * Call driver.start(url) once it listens (startNode does both).
 */
export async function buildNodeApp(opts: NodeAppOptions): Promise<{ app: Service; driver: VmDriver }> {
  const app = await createService({
    name: 'vm-node',
    registry: opts.registry,
    token: opts.token,
    // The log channel and /join take the peer credential only; client routes never do.
    roleTokens: { peer: opts.peerToken },
    logLevel: opts.logLevel,
    build: opts.build ?? buildInfo(new URL('../../package.json', import.meta.url), process.env),
    telemetry: opts.telemetry,
    bodyLimit: 16 * 1024,
    fastify: {
      http2: true,
      forceCloseConnections: true,
      http2SessionTimeout: 600_000,
      serverFactory: dualProtocolServerFactory({ http2SessionTimeoutMs: 600_000, limits: opts.connectionLimits }),
    },
    health: () => {
      const s = driver.status();
      return { vm: opts.vmId, node: opts.nodeId, role: s.role, live: s.live };
    },
  });
  const driver = new VmDriver({ ...opts, log: app.log, registry: opts.registry }, opts.startEpoch ?? 1);
  driver.sink.nodeId = opts.nodeId;
  const routeOptions = { vmId: opts.vmId, driver };
  await app.register(requestRoutes, routeOptions);
  await app.register(statusRoutes, routeOptions);
  await app.register(joinRoutes, routeOptions);

  const receiver = registerLogReceiver(app, { vmId: opts.vmId, sink: driver.sink });
  // A failed node takes no log stream: end the one it holds, so the primary sees it at once.
  driver.onFail = () => receiver.closeAll();
  app.addHook('preClose', async () => {
    receiver.closeAll();
    await driver.close();
  });
  return { app, driver };
}
