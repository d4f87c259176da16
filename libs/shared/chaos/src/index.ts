/**
 * @mr/chaos: the pure half of the chaos drills. A drill is a seeded,
 * replayable schedule of faults plus a workload plus the invariants that must
 * hold; this package builds the schedule from a seed, checks invariants over
 * recorded samples and renders reports. apps/drills carries schedules out.
 */
export * from './schedule.ts';
export { CATALOG, INVARIANTS, findDrill, buildSchedule, parseSeed, controlSchedule, ERR_UNKNOWN_DRILL, ERR_BAD_SEED, ERR_NO_CONTROL, type DrillDefinition } from './catalog.ts';
export { checkOnePrimaryPerEpoch, checkCounter, checkSameLines, checkRecoveries, vmRecovery, progressRecovery, parseMonitors, checkMonitors, type MonitorReading, type CheckResult, type NodeSample, type Recovery, type AnswerSample, type ProgressSample } from './checks.ts';
export { renderMarkdown, parseReport, outcomeOf, ERR_BAD_REPORT, type DrillReport, type TimelineEntry, type InvariantVerdict } from './report.ts';
export { corpusFile } from './corpus.ts';
export { renderSvg } from './svg.ts';
export { createDrillRng, type DrillRng } from './rng.ts';
