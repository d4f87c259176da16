/**
 * @mr/linearizability: decides whether a recorded history of concurrent operations is
 * linearizable (Wing & Gong search with Lowe's memoisation, partitioned per key), with a model
 * of the kv guest.
 *
 *   const report = checkKvHistory(history);   // { outcome: 'linearizable' | 'violation' | 'unknown', … }
 *   if (report.outcome === 'violation') console.log(report.violations[0].explanation);
 */
export { checkKvHistory, formatOp, ERR_BAD_HISTORY, type KvOperation, type KvCheckReport, type KvViolation, type CheckOptions } from './kv-check.ts';
export { kvStep, kvResultMatches, formatKvResult, parseGuestInt, KV_MODEL_OPS, KV_MODEL_ERRORS, KV_MAX_VALUE_BYTES, type KvModelOp, type KvResult, type KvState, type KvStep } from './kv-model.ts';
export { searchPartition, REJECT, type SearchModel, type TimedOp, type PartitionOutcome } from './search.ts';
