/**
 * Which of a winning map attempt's files belongs to reduce partition r.
 *
 * Workers report one file per partition, index = partition (the executor
 * contract); a worker that skips empty partitions reports fewer, named
 * mr-<map>-<r> after the lab. Either way the answer is the file of that
 * partition, or undefined when the map produced none for it.
 */
export function partitionFile(files: readonly string[], mapIndex: number, partition: number, reduces: number): string | undefined {
  if (files.length === reduces) return files[partition];
  const want = `mr-${mapIndex}-${partition}`;
  for (const f of files) {
    const slash = f.lastIndexOf('/');
    if (f.slice(slash + 1) === want) return f;
  }
  return undefined;
}

/** The reduce inputs of partition r: the winning maps' files for it, in map order. */
export function reduceInputs(mapFiles: readonly (readonly string[])[], partition: number, reduces: number): string[] {
  const out: string[] = [];
  for (let m = 0; m < mapFiles.length; m++) {
    const f = partitionFile(mapFiles[m]!, m, partition, reduces);
    if (f !== undefined) out.push(f);
  }
  return out;
}

/** The attempt-private directory a map attempt writes its mr-<m>-<r> files into. */
export function mapAttemptDir(workDir: string, mapIndex: number, attempt: number): string {
  return `${workDir}/m${mapIndex}-a${attempt}`;
}

/** The attempt-private directory a reduce attempt writes mr-out-<r> into (published by the coordinator). */
export function reduceAttemptDir(workDir: string, reduceIndex: number, attempt: number): string {
  return `${workDir}/r${reduceIndex}-a${attempt}`;
}

/**
 * Checks a map attempt's declared outputs: each must be `<dir>/mr-<mapIndex>-<r>`
 * of that attempt's own directory, r < reduces, no partition twice. Returns
 * the files in partition order (rebuilt from the checked names, not copied
 * from the worker), or a message saying what is wrong.
 */
export function checkMapOutputs(files: readonly string[], dir: string, mapIndex: number, reduces: number): { files: string[] } | { error: string } {
  if (files.length > reduces) return { error: `${files.length} files for ${reduces} partitions` };
  const seen = new Set<number>();
  const prefix = `${dir}/mr-${mapIndex}-`;
  for (const f of files) {
    const rest = f.startsWith(prefix) ? f.slice(prefix.length) : '';
    const r = /^(0|[1-9][0-9]{0,8})$/.test(rest) ? Number(rest) : -1;
    if (r < 0 || r >= reduces) return { error: `"${f.slice(0, 300)}" is not an output of this attempt (${prefix}<r>, r < ${reduces})` };
    if (seen.has(r)) return { error: `partition ${r} is listed twice` };
    seen.add(r);
  }
  return { files: [...seen].sort((a, b) => a - b).map((r) => `${prefix}${r}`) };
}
