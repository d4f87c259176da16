import { randomInt } from 'node:crypto';
import { resolve } from 'node:path';
import { EXIT, type CliContext } from '../context.ts';
import { parse, UsageError } from '../args.ts';

export const summary = 'chaos drills: kill, stall and partition a cluster on purpose and check nothing was lost';

export const usage = `usage:
  mr drill list
      the catalog: each drill's system, what it does and the invariants it checks
  mr drill run NAME|all [--seed S] [--short] [--control] [--out DIR] [--keep]
      starts its own cluster (free loopback ports, a temp dir), carries out the drill's
      fault schedule for seed S (default: a random seed, printed) while the workload runs,
      checks the invariants and writes DIR/<drill>-seed<S>-<time>.json, .md and .svg
      (default DIR ./drill-reports). 'all' runs the whole catalog, one drill at a time.
  mr drill report FILE
      prints a report (.json) as Markdown
  mr drill replay FILE [--out DIR] [--keep]
      carries out exactly the schedule stored in report FILE again and writes a new report

options:
  --seed S      the schedule's seed, an integer in [0, 4294967295]; the same seed gives the
                same faults at the same times (ms from the workload's start)
  --short       the short form (smaller workload, fewer faults; what npm test runs)
  --control     break-the-rule drills only (with 'all': every one of them): the same faults
                with the rule ON, where every invariant must hold (the anomaly comes from
                the missing rule, not from the faults)
  --out DIR     where reports go (default ./drill-reports)
  --keep        keep the drill's temp dir (data, outputs) instead of removing it
  -h, --help    this text

Drills run the parts in dev mode (no token, loopback only) whatever MR_TOKEN says.
Break-the-rule drills start their parts with a rule switched off (--drill-unsafe plus
--no-output-rule, --no-test-and-set or --no-dedup); they pass when the anomaly is caught.
Not yet: --against URL (drilling a running mr local), disk faults, network namespaces.

exit codes: 0 every drill passed, 1 an invariant failed or a drill could not run,
            2 bad usage (unknown drill, bad seed, not a report file).`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  const chaos = await import('@mr/chaos');
  switch (sub) {
    case 'list': {
      if (rest.length) throw new UsageError('mr drill list: takes no arguments');
      for (const d of chaos.CATALOG) {
        const expect = d.expectBroken ? `; passes when one of ${d.expectBroken.join(', ')} BREAKS` : '';
        ctx.stdout.write(`${d.name.padEnd(26)} ${d.system.padEnd(9)} ${d.summary}\n${' '.repeat(37)}invariants: ${d.invariants.join(', ')}; recovery bound ${d.recoveryBoundMs / 1000} s${expect}\n`);
      }
      return EXIT.OK;
    }
    case 'run': {
      const a = parse('drill run', rest, { seed: { type: 'string' }, short: { type: 'boolean' }, control: { type: 'boolean' }, out: { type: 'string' }, keep: { type: 'boolean' } }, true);
      if (!a) return help(ctx);
      if (a.positionals.length !== 1) throw new UsageError('mr drill run: exactly one drill NAME (or all) is required');
      const name = a.positionals[0]!;
      const names = name === 'all' ? chaos.CATALOG.filter((d) => !a.values.control || d.expectBroken).map((d) => d.name) : [name];
      let seed: number;
      try {
        for (const n of names) chaos.findDrill(n);
        seed = a.values.seed !== undefined ? chaos.parseSeed(a.values.seed) : randomInt(0, 2 ** 31);
      } catch (err) {
        throw new UsageError(`mr drill run: ${(err as Error).message}`);
      }
      const scale = a.values.short ? 'short' : 'full';
      let schedules = names.map((n) => chaos.buildSchedule(n, seed, scale));
      if (a.values.control) {
        try {
          schedules = schedules.map((s) => chaos.controlSchedule(s));
        } catch (err) {
          throw new UsageError(`mr drill run --control: ${(err as Error).message}`);
        }
      }
      return runSchedules(schedules, a.values, ctx);
    }
    case 'replay': {
      const a = parse('drill replay', rest, { out: { type: 'string' }, keep: { type: 'boolean' } }, true);
      if (!a) return help(ctx);
      if (a.positionals.length !== 1) throw new UsageError('mr drill replay: exactly one report FILE is required');
      const report = await read(a.positionals[0]!, ctx);
      if (!report) return EXIT.USAGE;
      return runSchedules([report.schedule], a.values, ctx, resolve(a.positionals[0]!));
    }
    case 'report': {
      if (rest.length !== 1) throw new UsageError('mr drill report: exactly one report FILE is required');
      const report = await read(rest[0]!, ctx);
      if (!report) return EXIT.USAGE;
      ctx.stdout.write(chaos.renderMarkdown(report));
      return report.outcome === 'passed' ? EXIT.OK : EXIT.FAILED;
    }
    case undefined:
      throw new UsageError('mr drill: a subcommand is required (list, run, report, replay)');
    default:
      throw new UsageError(`mr drill: unknown subcommand "${sub}" (list, run, report, replay)`);
  }
}

function help(ctx: CliContext): number {
  ctx.stdout.write(`${usage}\n`);
  return EXIT.OK;
}

async function read(file: string, ctx: CliContext) {
  const { readReport } = await import('@mr/drills');
  try {
    return readReport(file);
  } catch (err) {
    ctx.stderr.write(`mr drill: ${file}: ${(err as Error).message}\n`);
    return undefined;
  }
}

async function runSchedules(
  schedules: import('@mr/chaos').Schedule[],
  opts: { out?: string | undefined; keep?: boolean | undefined },
  ctx: CliContext,
  replayOf?: string,
): Promise<number> {
  const { runDrill, writeReport } = await import('@mr/drills');
  const out = resolve(opts.out ?? 'drill-reports');
  const results: string[] = [];
  let failed = 0;
  for (const schedule of schedules) {
    const r = await runDrill({ schedule, keep: opts.keep, replayOf, env: ctx.env, log: (l) => ctx.stdout.write(`${l}\n`) });
    const files = writeReport(r, out);
    for (const i of r.invariants) ctx.stdout.write(`  ${i.ok ? 'held  ' : 'BROKEN'} ${i.id}: ${i.detail}\n`);
    for (const x of r.recoveries) ctx.stdout.write(`  recovery ${x.fault}: ${x.what} after ${x.recoveredMs === null ? 'never' : `${x.recoveredMs} ms`}\n`);
    const line = `drill ${schedule.drill}${schedule.control ? ' (control)' : ''} seed ${schedule.seed}: ${r.outcome.toUpperCase()}${r.error ? ` (${r.error.split('\n')[0]})` : ''}; report ${files.md}${opts.keep ? `; parts' files kept in ${r.dir}` : ''}`;
    ctx.stdout.write(`${line}\n\n`);
    results.push(line);
    if (r.outcome !== 'passed') failed++;
  }
  if (schedules.length > 1) ctx.stdout.write(`${results.join('\n')}\n${schedules.length - failed} of ${schedules.length} drills passed\n`);
  return failed ? EXIT.FAILED : EXIT.OK;
}
