/**
 * npm run lincheck -- [--rounds N] [--faults kill,stall,partition,join] [--seed S] [--clients C]
 *                        [--workload-ms W] [--dump DIR] [--verbose]
 *
 * Runs N rounds per fault type (default 5) over real processes and checks every round's
 * history for linearizability. Each round's workload runs W/3..W ms before the fault and
 * W/2..W ms after recovery (default 3000; the test in npm test uses 900). Prints one line per round and a table per fault type; exits 1
 * when any round is not linearizable (or could not be decided, or failed to run). --dump DIR
 * writes each such round's history (JSON lines, with the node and attempts of each answer).
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRound, describeRound, FAULTS, type Fault, type RoundResult } from './lincheck-rounds.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    faults: { type: 'string', default: FAULTS.join(',') },
    seed: { type: 'string' },
    clients: { type: 'string' },
    'workload-ms': { type: 'string', default: '3000' },
    verbose: { type: 'boolean', default: false },
    dump: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
const faults = values.faults.split(',').map((f) => f.trim()) as Fault[];
for (const f of faults) if (!(FAULTS as readonly string[]).includes(f)) throw new Error(`unknown fault "${f}" (one of ${FAULTS.join(', ')})`);
const clients = values.clients === undefined ? undefined : Number(values.clients);
if (clients !== undefined && (!Number.isInteger(clients) || clients < 1 || clients > 64)) throw new Error('--clients must be an integer in 1..64');
const workloadMs = Number(values['workload-ms']);
if (!Number.isInteger(workloadMs) || workloadMs < 100 || workloadMs > 600_000) throw new Error('--workload-ms must be an integer in 100..600000');
let seed = values.seed === undefined ? Date.now() % 1_000_000 : Number(values.seed);
if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);

const stats = new Map<Fault, { rounds: number; linearizable: number; operations: number; unknown: number; retried: number; errors: number }>();
let bad = 0;
for (let r = 0; r < rounds; r++) {
  for (const fault of faults) {
    const s = stats.get(fault) ?? { rounds: 0, linearizable: 0, operations: 0, unknown: 0, retried: 0, errors: 0 };
    stats.set(fault, s);
    s.rounds++;
    const cleanups: (() => unknown)[] = [];
    const ctx = { after: (fn: () => unknown) => void cleanups.push(fn) };
    const roundSeed = seed++;
    let result: RoundResult | undefined;
    try {
      result = await runRound(ctx, { fault, seed: roundSeed, clients, workloadMs, log: values.verbose ? (l) => console.log(`  ${l}`) : undefined });
      console.log(describeRound(result));
      s.operations += result.operations;
      s.unknown += result.unknownOutcomes;
      s.retried += result.retried;
      if (result.report.outcome === 'linearizable') s.linearizable++;
      else {
        bad++;
        if (values.dump) {
          mkdirSync(values.dump, { recursive: true });
          const file = join(values.dump, `${fault}-${roundSeed}.jsonl`);
          writeFileSync(file, result.dump());
          console.log(`  history written to ${file}`);
        }
      }
    } catch (e) {
      s.errors++;
      bad++;
      console.log(`${fault} seed ${roundSeed}: the round failed to run: ${(e as Error).stack ?? e}`);
    } finally {
      for (const fn of cleanups.reverse()) await fn();
    }
  }
}
console.log('\nfault       rounds  linearizable  errors  operations  retried  unknown outcomes');
for (const [f, s] of stats) console.log(`${f.padEnd(10)}  ${String(s.rounds).padStart(6)}  ${String(s.linearizable).padStart(12)}  ${String(s.errors).padStart(6)}  ${String(s.operations).padStart(10)}  ${String(s.retried).padStart(7)}  ${String(s.unknown).padStart(16)}`);
process.exit(bad ? 1 : 0);
