import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { EXIT, type CliContext } from '../context.ts';
import { parse, intOption, UsageError } from '../args.ts';
import type { LocalEnv, StartedSection } from '../local/section.ts';

export const summary = 'run the whole cluster on this machine (coordinator, workers, FT VM pair; --demo runs a job and a VM workload)';

export const usage = `usage: mr local [--workers 3] [--port 7070] [--data ./data] [--demo | --no-demo] [--no-vm]

Starts on this machine, each as a separate process, a coordinator and N
workers (restarted if they die), and a fault-tolerant VM: a storage node and
a primary/backup pair running the kv guest. Prints their URLs and keeps
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
                     (first primary) on P+2, node b (first backup) on P+3
  --data DIR         state, logs and demo files (default ./data)
  --input-root DIR   another directory jobs may read inputs from (repeatable;
                     the data dir and the current directory always are)
  --demo             run the demos once the cluster is up (--no-demo: don't)
  --no-vm            don't start the FT VM (storage node, primary, backup)

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
  if (vm && port > 65532) throw new UsageError('mr local: --port must be at most 65532 (the VM uses port+1..port+3), or use --no-vm');
  const data = resolve(v.data ?? './data');
  mkdirSync(data, { recursive: true });
  const demo = v.demo === true;

  const env: LocalEnv = {
    ctx,
    data,
    childEnv: withRoleTokens({ ...process.env, ...ctx.env, FORCE_COLOR: '0' } as NodeJS.ProcessEnv),
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
        port,
        host: '127.0.0.1',
        inputRoots: [process.cwd(), ...(v['input-root'] ?? []).map((r) => resolve(r))],
      }),
    );
    if (vm) {
      const { startVm } = await import('../local/vm.ts');
      starting.push(startVm(env, { port, host: '127.0.0.1' }));
    }
    // More sections (the dashboard) start here, one push each.
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
