import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { EXIT, type CliContext } from '../context.ts';
import { parse, intOption, UsageError } from '../args.ts';
import type { LocalEnv, StartedSection } from '../local/section.ts';

export const summary = 'run the whole cluster on this machine (coordinator, workers; --demo runs a job)';

export const usage = `usage: mr local [--workers 3] [--port 7070] [--data ./data] [--demo | --no-demo]

Starts a coordinator and N workers on this machine, each a separate process
(restarted if it dies), prints their URLs and keeps serving until Ctrl-C.
State and logs go under --data. With --demo (the default of \`npm start\`)
it generates a small corpus of books under DATA/demo, runs a word count
over it, and prints where the output is and the top words.

options:
  --workers N        worker processes (default 3)
  --port P           coordinator port (default 7070; 0 picks a free one)
  --data DIR         state, logs and demo files (default ./data)
  --input-root DIR   another directory jobs may read inputs from (repeatable;
                     the data dir and the current directory always are)
  --demo             run the demo job once the cluster is up (--no-demo: don't)

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
  });
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const v = args.values;
  if (v.demo && v['no-demo']) throw new UsageError('mr local: --demo and --no-demo exclude each other');
  const workers = intOption(v.workers, '--workers', 3, 1, 64);
  const port = intOption(v.port, '--port', 7070, 0, 65535);
  const data = resolve(v.data ?? './data');
  mkdirSync(data, { recursive: true });
  const demo = v.demo === true;

  const env: LocalEnv = {
    ctx,
    data,
    childEnv: { ...process.env, ...ctx.env, FORCE_COLOR: '0' } as NodeJS.ProcessEnv,
    say: (line) => ctx.stdout.write(`${line}\n`),
  };
  const sections: StartedSection[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const s of [...sections].reverse()) await s.stop().catch(() => {});
    })());
  let interrupted!: () => void;
  const interruptedP = new Promise<void>((r) => (interrupted = r));
  const onSignal = () => {
    env.say('\nshutting down...');
    interrupted();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const { startMapReduce } = await import('../local/mapreduce.ts');
    sections.push(
      await startMapReduce(env, {
        workers,
        port,
        host: '127.0.0.1',
        inputRoots: [process.cwd(), ...(v['input-root'] ?? []).map((r) => resolve(r))],
      }),
    );
    // More sections (the FT VM pair, the dashboard) start here, one push each.

    env.say(`mr local: data in ${data}`);
    for (const s of sections) {
      for (const u of s.urls) env.say(`  ${`${s.name} ${u.label}`.padEnd(28)} ${u.url}`);
      for (const h of s.hints ?? []) env.say(`    ${h}`);
    }
    let ok = true;
    if (demo) {
      for (const s of sections) if (s.demo) ok = (await Promise.race([s.demo(), interruptedP.then(() => true)])) && ok;
      if (!ok) env.say('demo: FAILED (the cluster keeps running; see the logs)');
    }
    env.say('serving; press Ctrl-C to stop');
    await interruptedP;
    await stopAll();
    env.say('stopped');
    return EXIT.OK;
  } catch (err) {
    ctx.stderr.write(`mr local: ${(err as Error).message}\n`);
    await stopAll();
    return EXIT.FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
