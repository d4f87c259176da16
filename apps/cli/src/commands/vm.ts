import type { CliContext } from '../context.ts';
import { EXIT } from '../context.ts';
import { parse, intOption, UsageError } from '../args.ts';

export const summary = 'fault-tolerant VM: storage node, primary/backup nodes, client';

export const usage = `usage:
  mr vm storage --port P --data DIR [--host 127.0.0.1] [--block-size 512] [--blocks 4096]
      the shared storage node: virtual disks and the per-VM test-and-set flag (epochs)

  mr vm node --id ID --role primary|backup --port P --storage URL [--peer URL] --guest NAME
             [--vm VM] [--host 127.0.0.1] [--tick 5ms] [--no-output-rule]
  mr vm node --id ID --join URL --port P --storage URL --guest NAME [--vm VM]
      a primary or backup node; --join brings a new backup up from a running primary
      (snapshot + log). --no-output-rule releases outputs without waiting for the
      backup's acknowledgement: for latency measurements only, it voids the guarantee.

  mr vm client --nodes URL,URL [--vm VM] [--client-id ID] <get|put|incr|append> <key> [value]
  mr vm client --nodes URL,URL [--vm VM] --load N [--clients C] [--key K]
      one request (prints the value), or N unique incr requests from C concurrent
      clients (prints latencies p50/p90/p99/max and the final counter)

MR_TOKEN (bearer token) is read from the environment.`;

/** Waits for SIGINT/SIGTERM, then closes. */
function untilSignal(close: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let closing = false;
    const stop = () => {
      if (closing) return;
      closing = true;
      const force = setTimeout(() => resolve(EXIT.FAILED), 5000);
      force.unref();
      close().then(
        () => resolve(EXIT.OK),
        () => resolve(EXIT.FAILED),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

async function storage(argv: string[], ctx: CliContext): Promise<number> {
  const r = parse('vm storage', argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    data: { type: 'string' },
    'block-size': { type: 'string' },
    blocks: { type: 'string' },
  });
  if (!r) return help(ctx);
  const host = r.values.host ?? '127.0.0.1';
  const port = intOption(r.values.port, '--port', 7080, 0, 65535);
  if (!r.values.data) throw new UsageError('mr vm storage: --data DIR is required');
  const blockSize = intOption(r.values['block-size'], '--block-size', 512, 16, 1 << 20);
  const blocks = intOption(r.values.blocks, '--blocks', 4096, 1, 1 << 24);
  const token = ctx.env['MR_TOKEN'] || undefined;
  const { checkBind } = await import('@mr/service-kit');
  const bad = checkBind(host, token);
  if (bad) {
    ctx.stderr.write(`mr vm storage: ${bad}\n`);
    return EXIT.USAGE;
  }
  const { startTelemetry } = await import('@mr/observability');
  const telemetry = await startTelemetry({ serviceName: 'vm-storage', env: ctx.env });
  const { startStorage } = await import('@mr/vm-node');
  const { resolve } = await import('node:path');
  const s = await startStorage({ host, port, dataDir: resolve(r.values.data), token, telemetry: telemetry.enabled, blockSize, blocks });
  if (!token) ctx.stderr.write('mr vm storage: no MR_TOKEN set: listening on loopback only, no auth\n');
  ctx.stdout.write(`vm storage listening on ${s.url}\n`);
  return untilSignal(async () => {
    await s.close();
    await telemetry.shutdown();
  });
}

function help(ctx: CliContext): number {
  ctx.stdout.write(`${usage}\n`);
  return EXIT.OK;
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'storage':
      return storage(rest, ctx);
    default:
      throw new UsageError(sub ? `mr vm: unknown subcommand "${sub}"` : 'mr vm: a subcommand is required (storage, node, client)');
  }
}
