/**
 * @mr/drills: carries out chaos drills (schedules from @mr/chaos) against a
 * cluster it starts itself, and writes their reports.
 */
export { runDrill, type RunOptions, type DrillShell, type Verdicts } from './runner.ts';
export { writeReport, readReport } from './report-files.ts';
export { FaultProxy, ERR_PROXY_CONFIG, type ProxyFault } from './fault-proxy.ts';
export { MR_BIN } from './parts.ts';
