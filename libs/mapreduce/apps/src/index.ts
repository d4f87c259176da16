export type { Emit, TaskContext, MrApp, MapTaskSpec, MapTaskResult, ReduceTaskSpec, ReduceTaskResult } from './types.ts';
export { ihash, partitionOf } from './hash.ts';
export { compareBytes, sortBytes } from './order.ts';
export { decodeUtf8, decodeSegments, SEGMENT_BYTES, words, countWords, tallyWords } from './words.ts';
export { runMapTask, runReduceTask, runSequential, intermediateName, outputName, type SequentialSpec, type SequentialResult } from './exec.ts';
export { writeAtomically, tempNameFor } from './files.ts';
export { getApp, listApps, registerApp, loadPluginApps, appProblem, PLUGIN_DIR_ENV } from './registry.ts';
export { ERR_INPUT_NOT_FOUND, ERR_INPUT_UNREADABLE, ERR_BAD_OPTIONS, ERR_BAD_PARTITION, ERR_BAD_INTERMEDIATE, ERR_UNKNOWN_APP, ERR_BAD_PLUGIN } from './errors.ts';
