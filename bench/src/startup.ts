/**
 * CLI start-up: wall time of `mr --version` and `mr --help` (which loads every
 * command module) as the bin runs them (compiled JavaScript in dist/), beside
 * the same calls through the TypeScript sources under tsx (what every process
 * ran before the build step) and beside `node -e ''` (Node's own start-up).
 * Runs are interleaved (one of each kind per round) so that load from other
 * processes hits every kind alike; medians and ratios are reported.
 *
 *   npm run bench -w @mr/bench -- startup      (BENCH_QUICK=1: 5 rounds)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { median, type Benchmark } from './benchmark.ts';

const MR = fileURLToPath(new URL('../../apps/cli/bin/mr.js', import.meta.url));
const MAIN_TS = new URL('../../apps/cli/src/main.ts', import.meta.url).href;

/** `mr ARGS` from the sources through tsx: what bin/mr.js did before dist/. */
function viaTsx(args: string[]): string[] {
  const script = `const { main } = await import(${JSON.stringify(MAIN_TS)});
process.exitCode = await main(${JSON.stringify(args)}, { env: process.env, stdout: process.stdout, stderr: process.stderr });`;
  return ['--conditions=@mr/source', '--import', 'tsx', '--input-type=module', '-e', script];
}

async function timeRun(args: string[]): Promise<number> {
  const t0 = performance.now();
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const [code] = (await once(p, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`node ${args.slice(0, 3).join(' ')} … exited ${code}: ${err}`);
  return performance.now() - t0;
}

export const startup: Benchmark = {
  name: 'startup',
  description: 'CLI start-up: mr --version / --help, compiled JS vs tsx vs node -e ""',
  async run({ quick, log }) {
    const rounds = quick ? 5 : 15;
    const kinds: Record<string, string[]> = {
      'node -e ""': ['-e', ''],
      'mr --version': [MR, '--version'],
      'mr --version (tsx)': viaTsx(['--version']),
      'mr --help': [MR, '--help'],
      'mr --help (tsx)': viaTsx(['--help']),
    };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
    await timeRun(kinds['mr --version (tsx)']!); // warm tsx's cache, as a second run would be
    for (let r = 0; r < rounds; r++) for (const [k, args] of Object.entries(kinds)) times[k]!.push(await timeRun(args));
    const med = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, median(xs)]));
    for (const [k, m] of Object.entries(med)) log(`${k.padEnd(20)} median ${m.toFixed(0)} ms over ${rounds} runs`);
    const out = {
      nodeMs: Math.round(med['node -e ""']!),
      versionMs: Math.round(med['mr --version']!),
      versionTsxMs: Math.round(med['mr --version (tsx)']!),
      helpMs: Math.round(med['mr --help']!),
      helpTsxMs: Math.round(med['mr --help (tsx)']!),
      versionOverNode: +(med['mr --version']! / med['node -e ""']!).toFixed(2),
      tsxOverCompiledVersion: +(med['mr --version (tsx)']! / med['mr --version']!).toFixed(2),
      tsxOverCompiledHelp: +(med['mr --help (tsx)']! / med['mr --help']!).toFixed(2),
      goal: 'mr --version <= 100 ms (quiet machine)',
    };
    log(`compiled mr --version is ${out.versionOverNode}x node -e ""; tsx takes ${out.tsxOverCompiledVersion}x (--version), ${out.tsxOverCompiledHelp}x (--help) the compiled time`);
    return out;
  },
};
