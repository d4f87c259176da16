/**
 * Benchmark runner: `npm run bench -w @mr/bench [-- [--quick] [NAME...]]`.
 * Runs every registered benchmark (or the named ones) in turn and prints a
 * summary. Register a benchmark by adding it to the list below.
 */
import type { Benchmark } from './benchmark.ts';
import { seqWc } from './seq-wc.ts';
import { vmCpu } from './vm-cpu.ts';
import { vmftCore } from './vmft-core.ts';
import { vmFt } from './vm-ft.ts';
import { smallTasks } from './small-tasks.ts';
import { logDecoder } from './log-decoder.ts';
import { scheduling } from './scheduling.ts';
import { restart } from './restart.ts';
import { startup } from './startup.ts';

export const benchmarks: Benchmark[] = [
  seqWc,
  vmCpu,
  vmftCore,
  vmFt,
  smallTasks,
  logDecoder,
  scheduling,
  restart,
  startup,
];

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick') || process.env['BENCH_QUICK'] === '1';
  const cpuProf = argv.includes('--cpu-prof') || process.env['BENCH_CPU_PROF'] === '1';
  const against = process.env['BENCH_AGAINST'] || undefined;
  const names = argv.filter((a) => !a.startsWith('--'));
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`usage: bench [--quick] [--cpu-prof] [NAME...]   (BENCH_AGAINST=DIR: another built checkout side by side)\n\n${benchmarks.map((b) => `  ${b.name.padEnd(14)} ${b.description}`).join('\n')}\n`);
    return 0;
  }
  const unknown = names.filter((n) => !benchmarks.some((b) => b.name === n));
  if (unknown.length) {
    process.stderr.write(`bench: unknown benchmark(s) ${unknown.join(', ')}; known: ${benchmarks.map((b) => b.name).join(', ')}\n`);
    return 2;
  }
  const chosen = names.length ? benchmarks.filter((b) => names.includes(b.name)) : benchmarks;
  const summary: Record<string, Record<string, number | string>> = {};
  for (const b of chosen) {
    process.stdout.write(`== ${b.name}: ${b.description}\n`);
    summary[b.name] = await b.run({ quick, cpuProf, against, log: (l) => process.stdout.write(`   ${l}\n`) });
  }
  process.stdout.write(`== summary\n${JSON.stringify(summary, null, 2)}\n`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
