import { EXIT, type CliContext } from '../context.ts';
import { parse, UsageError } from '../args.ts';

export const summary = 'sequential reference run of an app (the lab\'s mrsequential): DIR/mr-out-0';

export const usage = `usage: mr seq --app NAME --output DIR [--option key=value]... [--plugins DIR]
              [--reduces N [--partitioner hash|range]] [--no-combiner] [--counters] FILE...

Runs NAME's map over every FILE in turn and its reduce over every key, in
this one process, and writes all output lines (\`key value\`, keys in byte
order) to DIR/mr-out-0 (written to a temporary file, then renamed). FILE
names are passed to the app exactly as given (as the lab's mrsequential does).

Local debug mode (the paper's §4.7): with --reduces N it writes
DIR/mr-out-0..N-1 partitioned as a job with N reduces would be (the app's
partitioner, or --partitioner: hash, or range with split points sampled from
the inputs as the coordinator samples them), runs the app's combiner on
spilled groups (--no-combiner: not), and --counters prints every counter,
user counters (ctx.count) included, as a job shows them.

options:
  --app NAME          the app (wc, indexer, grep, sort, crash, nocrash, ...)
  --output DIR        output directory (created if missing)
  --option key=value  an app option, e.g. --option pattern=whale for grep (repeatable)
  --plugins DIR       load user apps from the modules in DIR (default: $MR_PLUGIN_DIR)
  --reduces N         write mr-out-0..N-1, partitioned as a job would be (default 1)
  --partitioner P     hash or range (default: the app's own partitioner, else hash)
  --no-combiner       do not run the app's combiner
  --counters          print the counters (COUNTER VALUE lines) after the summary
  -h, --help          this text

exit codes: 0 done, 2 bad usage (unknown app, bad option, missing file), 1 the app failed.`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parse('seq', argv, {
    app: { type: 'string' },
    output: { type: 'string' },
    option: { type: 'string', multiple: true },
    plugins: { type: 'string' },
    reduces: { type: 'string' },
    partitioner: { type: 'string' },
    'no-combiner': { type: 'boolean' },
    counters: { type: 'boolean' },
  }, true);
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const { values, positionals } = args;
  if (!values.app) throw new UsageError('mr seq: --app NAME is required');
  if (!values.output) throw new UsageError('mr seq: --output DIR is required');
  if (positionals.length === 0) throw new UsageError('mr seq: at least one input FILE is required');
  const options: Record<string, string> = {};
  for (const o of values.option ?? []) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new UsageError(`mr seq: --option expects key=value, got "${o}"`);
    options[o.slice(0, eq)] = o.slice(eq + 1);
  }

  let reduces = 1;
  if (values.reduces !== undefined) {
    if (!/^\d+$/.test(values.reduces) || Number(values.reduces) < 1 || Number(values.reduces) > 10_000) throw new UsageError(`mr seq: --reduces: an integer 1..10000, got "${values.reduces}"`);
    reduces = Number(values.reduces);
  }
  if (values.partitioner !== undefined && values.partitioner !== 'hash' && values.partitioner !== 'range') throw new UsageError(`mr seq: --partitioner: hash or range, got "${values.partitioner}"`);

  const apps = await import('@mr/mapreduce-apps');
  const pluginDir = values.plugins ?? ctx.env[apps.PLUGIN_DIR_ENV];
  if (pluginDir) {
    try {
      await apps.loadPluginApps(pluginDir);
    } catch (err) {
      ctx.stderr.write(`mr seq: ${(err as Error).message}\n`);
      return EXIT.USAGE;
    }
  }
  const app = apps.getApp(values.app);
  if (!app) {
    const known = apps.listApps().map((a) => `  ${a.name.padEnd(12)} ${a.description}`).join('\n');
    ctx.stderr.write(`mr seq: unknown app "${values.app}"; known apps:\n${known}\n`);
    return EXIT.USAGE;
  }
  const problem = app.validateOptions?.(options);
  if (problem) {
    ctx.stderr.write(`mr seq: ${problem}\n`);
    return EXIT.USAGE;
  }
  const { stat } = await import('node:fs/promises');
  for (const f of positionals) {
    const st = await stat(f).catch(() => undefined);
    if (!st) {
      ctx.stderr.write(`mr seq: input file not found: ${f}\n`);
      return EXIT.USAGE;
    }
    if (!st.isFile()) {
      ctx.stderr.write(`mr seq: not a regular file: ${f}\n`);
      return EXIT.USAGE;
    }
  }

  const t0 = process.hrtime.bigint();
  try {
    let partitioner: import('@mr/mapreduce-apps').PartitionerSpec | undefined;
    if (values.partitioner === 'hash') partitioner = { type: 'hash' };
    if (values.partitioner === 'range') {
      const { LIMITS } = await import('@mr/mapreduce-protocol');
      const inputs = await Promise.all(positionals.map(async (path, index) => ({ piece: { path, index }, size: (await stat(path)).size })));
      partitioner = { type: 'range', points: await apps.sampleSplitPoints({ app, options, inputs, reduces, maxPointLength: LIMITS.maxSplitPointLength }) };
    }
    const { files, counters } = await apps.runSequential({
      app, options, inputs: positionals, outputDir: values.output, reduces, partitioner, ...(values['no-combiner'] ? { combine: false } : {}),
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const where = files.length === 1 ? files[0] : `${files.length} files ${files[0]} ...`;
    ctx.stdout.write(`mr seq: ${app.name}: ${positionals.length} file(s), ${counters['mapInputBytes']} bytes in, ${counters['outputRecords']} keys -> ${where} (${ms.toFixed(0)} ms)\n`);
    if (values.counters) {
      for (const k of Object.keys(counters).sort()) ctx.stdout.write(`${k} ${counters[k]}\n`);
    }
    return EXIT.OK;
  } catch (err) {
    const e = err as Error & { code?: string; statusCode?: number };
    ctx.stderr.write(`mr seq: ${e.message}\n`);
    return e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500 ? EXIT.USAGE : EXIT.FAILED;
  }
}
