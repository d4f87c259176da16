import type { VmRequest } from '@mr/vmft-client';
import type { CliContext } from '../context.ts';
import { EXIT } from '../context.ts';
import { parse, intOption, durationMs, UsageError } from '../args.ts';
import { ruleSwitches, switchOptions, VM_RULE_SWITCHES } from '../rule-switches.ts';

export const summary = 'fault-tolerant VM: storage node, primary/backup nodes, client';

export const usage = `usage:
  mr vm storage --port P --data DIR --vm VM=NODE,NODE [--vm VM=...] [--host 127.0.0.1]
                [--block-size 512] [--blocks 4096]
      the shared storage node: virtual disks and the per-VM test-and-set flag (epochs).
      --vm vm1=a,b stores VM vm1, and only nodes a and b may claim it (test-and-set);
      any other VM id is unknown (404) and any other node id is refused (403).
      Required when a token is set; without any token (dev mode) it may be left
      out: then any VM id and node id may claim, up to 16 VMs.
      Every storage route requires MR_PEER_TOKEN (the VM nodes' credential).

  mr vm node --id ID --role primary|backup --port P --storage URL [--peer URL] --guest NAME
             [--storage etcd://HOST:PORT,HOST:PORT,... --disk URL]
             [--peers URL,URL] [--vm vm1] [--host 127.0.0.1] [--advertise URL] [--tick 20ms] [--suspect-ticks 15]
             [--drill-unsafe --no-output-rule|--no-test-and-set|--no-dedup]
  mr vm node --id ID --join URL --port P --storage URL --guest NAME [--peers URL,URL] [--vm VM]
      a primary or backup node; --join brings a new backup up from a running primary
      (snapshot + log). --peers lists the other nodes' base URLs: the only ones this
      node joins, streams its state to (POST /join from another URL is refused, 403),
      or follows a hint to; --peer and --join are always among them. The peer
      credential goes to these and to storage only. A log stream is taken only from
      the node that holds the epoch its hello names at storage (checked there).
      A joiner and its primary allow each other 250 ticks (5 s) for the state
      transfer before suspecting.
      --storage etcd://HOST:PORT,... makes an etcd v3 cluster the arbiter: test-and-set
      and the epoch flag are etcd transactions (they survive the loss of a minority of
      its members), and --disk names the storage node that keeps the virtual disk (the
      winner of an epoch fences it there before going live). Both nodes of a VM must
      use the same arbiter. --advertise is the URL the other node and
      clients reach this one at (default http://HOST:PORT; required when --host
      is a wildcard such as 0.0.0.0): it is sent in joins and log hellos and
      named as the live node in 503 answers.
      Break-the-rule switches, for chaos drills (and measuring what a rule costs)
      only, each refused unless --drill-unsafe is given too, and announced loudly:
        --no-output-rule   release outputs without waiting for the backup's ack
        --no-test-and-set  go live / go on alone without asking storage
        --no-dedup         the kv guest applies retried requests again (give it
                           to every node of the pair: they must run one program)

  mr vm client --nodes URL,URL [--vm vm1] [--json] <get|put|incr|append> <key> [value]
      one request in a new client session (opened, used once, closed): prints the value
  mr vm client --nodes URL,URL [--vm vm1] [--json] open-session | close-session <id>
  mr vm client --nodes URL,URL [--vm vm1] --session ID --seq N [--ack-below A] [--json]
               <get|put|incr|append> <key> [value]
      request seq N of an open session, e.g. a retry by hand: a seq whose answer is
      remembered gets it again without being applied again (--ack-below defaults to N)
  mr vm client --nodes URL,URL [--vm vm1] --load N [--clients 4] [--key counter] [--json]
      N unique incr requests from C concurrent clients, one session each (prints
      latencies p50/p90/p99/max and the final counter)

MR_TOKEN (the client token) and MR_PEER_TOKEN (the credential of the VM nodes
and storage among themselves; must differ from MR_TOKEN, and is required when
MR_TOKEN is set) are read from the environment.`;

/** An address that means "every interface": not one a peer can be sent to. */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
}

/** `--vm vm1=a,b` (repeatable) as VM id -> node ids; undefined when none is given. */
export function parseVmNodes(specs: readonly string[]): Map<string, string[]> | undefined {
  if (specs.length === 0) return undefined;
  const vms = new Map<string, string[]>();
  for (const spec of specs) {
    const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})=([A-Za-z0-9._:-]{1,64}(?:,[A-Za-z0-9._:-]{1,64})*)$/.exec(spec);
    if (!m) throw new UsageError(`mr vm storage: --vm expects VM=NODE,NODE (e.g. vm1=a,b), got "${spec}"`);
    if (vms.has(m[1]!)) throw new UsageError(`mr vm storage: VM "${m[1]}" is given twice`);
    vms.set(m[1]!, [...new Set(m[2]!.split(','))]);
  }
  return vms;
}

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
    vm: { type: 'string', multiple: true },
  });
  if (!r) return help(ctx);
  const host = r.values.host ?? '127.0.0.1';
  const port = intOption(r.values.port, '--port', 7080, 0, 65535);
  if (!r.values.data) throw new UsageError('mr vm storage: --data DIR is required');
  const blockSize = intOption(r.values['block-size'], '--block-size', 512, 16, 1 << 20);
  const blocks = intOption(r.values.blocks, '--blocks', 4096, 1, 1 << 24);
  const vms = parseVmNodes(r.values.vm ?? []);
  const { checkBind, credentialsFromEnv } = await import('@mr/service-kit');
  const creds = credentialsFromEnv(ctx.env, ['peer']);
  if (creds.error !== undefined) {
    ctx.stderr.write(`mr vm storage: ${creds.error}\n`);
    return EXIT.USAGE;
  }
  const token = creds.token;
  const peerToken = creds.roleTokens.peer;
  if ((token || peerToken) && !vms) {
    ctx.stderr.write('mr vm storage: a token is set, so the VMs and their node ids must be configured: --vm vm1=a,b\n');
    return EXIT.USAGE;
  }
  const bad = checkBind(host, token ?? peerToken);
  if (bad) {
    ctx.stderr.write(`mr vm storage: ${bad}\n`);
    return EXIT.USAGE;
  }
  const { startCommandTelemetry } = await import('../telemetry.ts');
  const telemetry = await startCommandTelemetry('vm storage', ctx.env, 'vm-storage');
  const { startStorage } = await import('@mr/vm-node');
  const { resolve } = await import('node:path');
  const s = await startStorage({ host, port, dataDir: resolve(r.values.data), token, peerToken, vms, telemetry: telemetry.enabled, blockSize, blocks });
  if (!token && !peerToken) ctx.stderr.write('mr vm storage: no MR_TOKEN set: listening on loopback only, no auth\n');
  if (!vms) ctx.stderr.write('mr vm storage: no --vm given (dev mode): any VM id and node id may claim, up to 16 VMs\n');
  ctx.stdout.write(`vm storage listening on ${s.url}\n`);
  return untilSignal(async () => {
    await s.close();
    await telemetry.shutdown();
  });
}

async function node(argv: string[], ctx: CliContext): Promise<number> {
  const r = parse('vm node', argv, {
    id: { type: 'string' },
    role: { type: 'string' },
    join: { type: 'string' },
    host: { type: 'string' },
    advertise: { type: 'string' },
    port: { type: 'string' },
    storage: { type: 'string' },
    disk: { type: 'string' },
    peer: { type: 'string' },
    peers: { type: 'string' },
    guest: { type: 'string' },
    vm: { type: 'string' },
    tick: { type: 'string' },
    'suspect-ticks': { type: 'string' },
    ...switchOptions(VM_RULE_SWITCHES),
    'log-level': { type: 'string' },
  });
  if (!r) return help(ctx);
  const v = r.values;
  const id = v.id;
  if (!id || !/^[A-Za-z0-9._:-]{1,64}$/.test(id)) throw new UsageError('mr vm node: --id ID is required (letters, digits, . _ : -)');
  const role = v.join ? 'backup' : v.role;
  if (role !== 'primary' && role !== 'backup') throw new UsageError('mr vm node: --role primary|backup (or --join URL) is required');
  if (v.join && v.role && v.role !== 'backup') throw new UsageError('mr vm node: --join starts a backup; drop --role primary');
  if (!v.storage) throw new UsageError('mr vm node: --storage URL is required');
  const guest = v.guest ?? 'kv';
  const vmId = v.vm ?? 'vm1';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(vmId)) throw new UsageError(`mr vm node: bad --vm "${vmId}"`);
  for (const [name, url] of [['--peer', v.peer], ['--join', v.join], ['--advertise', v.advertise]] as const) {
    if (url !== undefined && !/^http:\/\/[^/\s]+\/?$/.test(url)) throw new UsageError(`mr vm node: ${name} must be a base URL like http://127.0.0.1:7081, got "${url}"`);
  }
  const peers = (v.peers ?? '').split(',').filter((u) => u !== '');
  for (const url of peers) {
    if (!/^http:\/\/[^/\s]+\/?$/.test(url)) throw new UsageError(`mr vm node: --peers takes base URLs like http://127.0.0.1:7082, got "${url}"`);
  }
  if (peers.length > 64) throw new UsageError('mr vm node: --peers: at most 64 URLs');
  const host = v.host ?? '127.0.0.1';
  const port = intOption(v.port, '--port', 7081, 0, 65535);
  if (isWildcard(host) && !v.advertise) throw new UsageError(`mr vm node: --host ${host} listens on every address, so the URL peers and clients reach this node at is unknown: give --advertise URL (e.g. http://10.0.0.5:${port || 7081})`);
  const tickMs = v.tick ? durationMs(v.tick, '--tick') : 20;
  if (tickMs < 1 || tickMs > 10_000) throw new UsageError('mr vm node: --tick must be between 1ms and 10s');
  const suspectTicks = intOption(v['suspect-ticks'], '--suspect-ticks', 15, 3, 10_000);
  const broken = ruleSwitches('vm node', v, VM_RULE_SWITCHES, ctx);
  if (broken.includes('dedup') && guest !== 'kv') throw new UsageError('mr vm node: --no-dedup applies to the kv guest only');
  const { parseStorageOptions } = await import('@mr/vm-node/arbiter-config');
  let storage;
  try {
    storage = parseStorageOptions(v.storage, v.disk);
  } catch (err) {
    throw new UsageError(`mr vm node: ${(err as Error).message}`);
  }
  const { checkBind, credentialsFromEnv } = await import('@mr/service-kit');
  const creds = credentialsFromEnv(ctx.env, ['peer']);
  if (creds.error !== undefined) {
    ctx.stderr.write(`mr vm node: ${creds.error}\n`);
    return EXIT.USAGE;
  }
  const token = creds.token;
  const peerToken = creds.roleTokens.peer;
  const bad = checkBind(host, token);
  if (bad) {
    ctx.stderr.write(`mr vm node: ${bad}\n`);
    return EXIT.USAGE;
  }
  const { isGuestName, GUEST_NAMES } = await import('@mr/vmft-guests');
  if (!isGuestName(guest)) throw new UsageError(`mr vm node: unknown guest "${guest}" (known: ${GUEST_NAMES.join(', ')})`);
  const { startCommandTelemetry } = await import('../telemetry.ts');
  const telemetry = await startCommandTelemetry('vm node', ctx.env, 'vm-node', id);
  const { startNode } = await import('@mr/vm-node');
  let n;
  try {
    n = await startNode({
      vmId,
      nodeId: id,
      role,
      joinUrl: v.join,
      guest,
      storageUrl: storage.storageUrl,
      arbiter: storage.arbiter,
      peerUrl: v.peer,
      peers,
      token,
      peerToken,
      host,
      port,
      ...(v.advertise ? { advertiseUrl: new URL(v.advertise).origin } : {}),
      tickMs,
      suspectTicks,
      outputRule: !broken.includes('output-rule'),
      testAndSet: !broken.includes('test-and-set'),
      dedup: !broken.includes('dedup'),
      logLevel: v['log-level'] ?? 'info',
      telemetry: telemetry.enabled,
    });
  } catch (err) {
    ctx.stderr.write(`mr vm node: ${(err as Error).message}\n`);
    await telemetry.shutdown();
    return EXIT.UNREACHABLE;
  }
  if (!token) ctx.stderr.write('mr vm node: no MR_TOKEN set: listening on loopback only, no auth\n');
  ctx.stdout.write(`vm node ${id} (${v.join ? 'joining' : role}, vm ${vmId}, guest ${guest}) listening on ${n.url}\n`);
  const node = n;
  return untilSignal(async () => {
    await node.close();
    await telemetry.shutdown();
  });
}

/** `mr vm client`: its requests are spans of service vm-client (README "Traces") when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
async function client(argv: string[], ctx: CliContext): Promise<number> {
  const { startCommandTelemetry } = await import('../telemetry.ts');
  const telemetry = await startCommandTelemetry('vm client', ctx.env, 'vm-client');
  try {
    return await clientCommand(argv, ctx);
  } finally {
    await telemetry.shutdown();
  }
}

async function clientCommand(argv: string[], ctx: CliContext): Promise<number> {
  const r = parse('vm client', argv, {
    nodes: { type: 'string' },
    vm: { type: 'string' },
    session: { type: 'string' },
    seq: { type: 'string' },
    'ack-below': { type: 'string' },
    load: { type: 'string' },
    clients: { type: 'string' },
    key: { type: 'string' },
    deadline: { type: 'string' },
    json: { type: 'boolean' },
  }, true);
  if (!r) return help(ctx);
  const v = r.values;
  if (!v.nodes) throw new UsageError('mr vm client: --nodes URL,URL is required');
  const nodes = v.nodes.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of nodes) if (!/^https?:\/\/[^/\s]+\/?$/.test(n)) throw new UsageError(`mr vm client: bad node URL "${n}"`);
  const vmId = v.vm ?? 'vm1';
  const token = ctx.env['MR_TOKEN'] || undefined;
  const deadlineMs = v.deadline ? durationMs(v.deadline, '--deadline') : 30_000;
  const lib = await import('@mr/vmft-client');
  if (v.load !== undefined) {
    if (r.positionals.length) throw new UsageError('mr vm client: --load takes no operation (it issues incr requests)');
    const requests = intOption(v.load, '--load', 1000, 1, 10_000_000);
    const clients = intOption(v.clients, '--clients', 4, 1, 1000);
    const report = await lib.runLoad({ nodes, vmId, token, requests, clients, deadlineMs, ...(v.key ? { key: v.key } : {}) });
    if (v.json) ctx.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      const l = report.latencyMs;
      ctx.stdout.write(
        `${report.answered}/${report.requests} answered, ${report.failed} failed (${report.unknown} of them maybe applied), ${report.retries} retries in ${(report.elapsedMs / 1000).toFixed(2)} s (${report.throughput.toFixed(0)} req/s)\n` +
          `latency ms: p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}  mean ${l.mean}\n` +
          `highest counter value answered: ${report.values.reduce((a, b) => Math.max(a, b), 0)}\n`,
      );
      for (const e of report.errors) ctx.stderr.write(`error: ${e}\n`);
    }
    return report.failed === 0 ? EXIT.OK : EXIT.FAILED;
  }
  const [op, key, value, ...extra] = r.positionals;
  const c = new lib.VmClient({ nodes, vmId, token, deadlineMs });
  const fail = (err: unknown): number => {
    const e = err as { code?: string; message: string; outcome?: string };
    ctx.stderr.write(`mr vm client: ${e.message}${e.outcome ? ` (outcome: ${e.outcome === 'unknown' ? 'unknown, it may have been applied once' : 'not applied'})` : ''}\n`);
    return e.code === lib.ERR_VM_REJECTED.code || e.code === lib.ERR_SESSION_EXPIRED.code ? EXIT.USAGE : EXIT.UNREACHABLE;
  };
  const sessionOption = (s: string | undefined, flag: string): number => intOption(s, flag, 0, 1, 0xffffffff);
  if (op === 'open-session' || op === 'close-session') {
    if (v.session !== undefined || v.seq !== undefined) throw new UsageError(`mr vm client: ${op} takes no --session/--seq`);
    if (op === 'open-session' && key !== undefined) throw new UsageError('mr vm client: open-session takes no arguments');
    if (op === 'close-session' && (key === undefined || value !== undefined)) throw new UsageError('mr vm client: close-session <id>');
    try {
      if (op === 'open-session') {
        const id = await c.open();
        ctx.stdout.write(v.json ? `${JSON.stringify({ session: id })}\n` : `${id}\n`);
        await c.close({ keepSession: true });
        return EXIT.OK;
      }
      const closed = await c.closeSession(sessionOption(key, 'session id'));
      ctx.stdout.write(v.json ? `${JSON.stringify({ closed })}\n` : closed ? 'closed\n' : 'the session had expired already\n');
      await c.close();
      return closed ? EXIT.OK : EXIT.FAILED;
    } catch (err) {
      await c.close({ keepSession: true });
      return fail(err);
    }
  }
  if (op !== 'get' && op !== 'put' && op !== 'incr' && op !== 'append') {
    throw new UsageError('mr vm client: expected an operation: get|put|incr|append <key> [value], open-session or close-session <id>');
  }
  if (!key) throw new UsageError(`mr vm client: ${op} needs a key`);
  if ((op === 'put' || op === 'append') && value === undefined) throw new UsageError(`mr vm client: ${op} needs a value`);
  if ((op === 'get' || op === 'incr') && value !== undefined) throw new UsageError(`mr vm client: ${op} takes no value`);
  if (extra.length) throw new UsageError(`mr vm client: unexpected arguments: ${extra.join(' ')}`);
  if ((v.session === undefined) !== (v.seq === undefined)) throw new UsageError('mr vm client: --session and --seq go together');
  if (v['ack-below'] !== undefined && v.session === undefined) throw new UsageError('mr vm client: --ack-below needs --session and --seq');
  const req: VmRequest = { op, key, ...(value !== undefined ? { value } : {}) };
  try {
    let a;
    if (v.session !== undefined) {
      const seq = sessionOption(v.seq, '--seq');
      const ackBelow = v['ack-below'] !== undefined ? sessionOption(v['ack-below'], '--ack-below') : seq;
      if (ackBelow > seq) throw new UsageError('mr vm client: --ack-below may not exceed --seq');
      a = await c.requestAt({ session: sessionOption(v.session, '--session'), seq, ackBelow }, req);
    } else a = await c.request(req);
    if (v.json) ctx.stdout.write(`${JSON.stringify(a)}\n`);
    else ctx.stdout.write(`${a.value === null ? '(nil)' : String(a.value)}\n`);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    return fail(err);
  } finally {
    await c.close();
  }
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
    case 'node':
      return node(rest, ctx);
    case 'client':
      return client(rest, ctx);
    default:
      throw new UsageError(sub ? `mr vm: unknown subcommand "${sub}"` : 'mr vm: a subcommand is required (storage, node, client)');
  }
}
