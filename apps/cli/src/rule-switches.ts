/**
 * Break-the-rule switches: flags that switch off one of the rules that make
 * the cluster fault tolerant, so that a chaos drill can show what the rule
 * prevents. Off by default; a service refuses any of them at start unless
 * `--drill-unsafe` is given too (the drill runner passes both), and says so
 * loudly on stderr and in its log.
 */
import type { CliContext } from './context.ts';
import { UsageError } from './args.ts';

export interface RuleSwitch {
  /** The flag without dashes, e.g. 'no-output-rule'. */
  flag: string;
  /** The rule it switches off, as the logs name it. */
  rule: string;
  /** What goes wrong without it. */
  without: string;
}

export const DRILL_UNSAFE_FLAG = 'drill-unsafe';

export const VM_RULE_SWITCHES: readonly RuleSwitch[] = [
  { flag: 'no-output-rule', rule: 'output-rule', without: 'answers leave before the backup acknowledged them: a failover can lose acknowledged answers' },
  { flag: 'no-test-and-set', rule: 'test-and-set', without: 'the node goes live or on alone without asking storage: a partition yields two live primaries' },
  { flag: 'no-dedup', rule: 'dedup', without: 'the kv guest applies a retried request again: retries after a failover are applied twice' },
];

export const MR_COORDINATOR_RULE_SWITCHES: readonly RuleSwitch[] = [
  { flag: 'no-attempt-fencing', rule: 'attempt-fencing', without: 'completions of stale attempts (a stalled worker\'s, a re-issued task\'s old holder) are accepted' },
  { flag: 'no-map-reexecution', rule: 'map-reexecution', without: 'a worker-shuffle map whose worker was lost is not run again: reduces wait for output that is gone' },
  { flag: 'no-output-rule', rule: 'output-rule', without: 'replies leave before the standby acknowledged their inputs: a failover can lose what a worker or client was told, and a partitioned old active can still commit' },
];

/** --drill-unsafe was given (alone it mounts a service's fault-injection routes, e.g. the coordinator's journal disk faults). */
export function drillUnsafe(values: Record<string, unknown>): boolean {
  return values[DRILL_UNSAFE_FLAG] === true;
}

/** parseArgs options for the switches and --drill-unsafe. */
export function switchOptions(switches: readonly RuleSwitch[]): Record<string, { type: 'boolean' }> {
  return Object.fromEntries([...switches.map((s) => s.flag), DRILL_UNSAFE_FLAG].map((f) => [f, { type: 'boolean' as const }]));
}

/**
 * The rules switched off by `values` (empty: none). Throws a UsageError when a
 * switch is given without --drill-unsafe; writes a loud banner for each switch given.
 */
export function ruleSwitches(cmd: string, values: Record<string, unknown>, switches: readonly RuleSwitch[], ctx: CliContext): string[] {
  const on = switches.filter((s) => values[s.flag] === true);
  if (on.length === 0) return [];
  if (values[DRILL_UNSAFE_FLAG] !== true) {
    throw new UsageError(`mr ${cmd}: ${on.map((s) => `--${s.flag}`).join(', ')} switch${on.length > 1 ? '' : 'es'} off a fault-tolerance rule on purpose, for chaos drills only; refused unless --${DRILL_UNSAFE_FLAG} is given too`);
  }
  for (const s of on) ctx.stderr.write(`mr ${cmd}: !!! DRILL-UNSAFE: --${s.flag}: the ${s.rule} rule is OFF: ${s.without}. Never run this outside a drill. !!!\n`);
  return on.map((s) => s.rule);
}
