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
