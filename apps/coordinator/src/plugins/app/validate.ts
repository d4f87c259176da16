/**
 * Checks a job submission against the filesystem and the configured input
 * roots. Throws a coded 4xx error saying what is wrong; changes nothing.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { isAbsolute, normalize, sep } from 'node:path';
import { DEFAULT_SPLIT_BYTES, getApp, listApps, planSplits, sampleSplitPoints, type MrApp } from '@mr/mapreduce-apps';
import { LIMITS, type JobSubmit } from '@mr/mapreduce-protocol';
import type { JobSettings, JobSpec } from '@mr/mapreduce-core';
import {
  ERR_BAD_INPUT,
  ERR_BAD_OPTIONS,
  ERR_BAD_OUTPUT,
  ERR_INPUT_OUTSIDE_ROOTS,
  ERR_NO_INPUT_ROOTS,
  ERR_OUTPUT_NOT_ALLOWED,
  ERR_OUTPUT_NOT_EMPTY,
  ERR_UNKNOWN_APP,
} from '../../errors.ts';

function normalized(p: string): boolean {
  return isAbsolute(p) && normalize(p) === p && !p.split('/').includes('..') && !p.includes('\0');
}

/** Real paths of the configured roots (a root that does not exist is dropped with a warning by the caller). */
export async function resolveRoots(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) out.push(await realpath(r));
  return out;
}

function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Where outputs may go (real paths): under an output root, never into the data dir. */
export interface OutputPlaces {
  outputRoots: readonly string[];
  dataDir: string;
}

/**
 * The real path an output directory would have: the nearest existing
 * ancestor resolved (symlinks), the rest appended.
 */
async function realOutput(p: string): Promise<string> {
  const segs = p.split('/').filter(Boolean);
  for (let i = segs.length; i >= 0; i--) {
    const head = `/${segs.slice(0, i).join('/')}`;
    try {
      const real = await realpath(head);
      return [real === '/' ? '' : real, ...segs.slice(i)].join('/') || '/';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw ERR_BAD_OUTPUT(`output "${p}" cannot be used (${code})`);
    }
  }
  return p;
}

/**
 * Output rules (README, "Job outputs"): under an allowed output root; not the
 * coordinator's data dir, inside it or around it; not an input root or a
 * directory that contains one; a new or empty directory (a job never
 * overwrites files it did not write). Another unfinished job's output is
 * refused by the scheduler (it sees every job at once).
 */
async function checkOutput(output: string, inputRoots: readonly string[], places: OutputPlaces): Promise<string> {
  const real = await realOutput(output);
  if (places.outputRoots.length === 0) throw ERR_OUTPUT_NOT_ALLOWED(`no output roots are configured: start the coordinator with --output-root DIR, or submit without an output`);
  if (!places.outputRoots.some((r) => under(real, r))) throw ERR_OUTPUT_NOT_ALLOWED(`output "${output}" is not under an allowed output root (${places.outputRoots.join(', ')})`);
  if (under(real, places.dataDir) || under(places.dataDir, real)) throw ERR_OUTPUT_NOT_ALLOWED(`output "${output}" overlaps the coordinator's data directory`);
  const root = inputRoots.find((r) => under(r, real));
  if (root !== undefined) throw ERR_OUTPUT_NOT_ALLOWED(`output "${output}" is or contains the input root ${root}`);
  const entries = await readdir(real).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw ERR_BAD_OUTPUT(`output "${output}" cannot be read (${err.code})`);
  });
  if (entries.length > 0) throw ERR_OUTPUT_NOT_EMPTY(output, entries.length);
  return real;
}

/**
 * The framework's job options; for the range partitioner, the split points
 * sampled from the inputs (the app's map over a few evenly spaced pieces,
 * about 1 MiB in all, run here at submit). Undefined when all are defaults.
 */
async function jobSettings(body: JobSubmit, app: MrApp, inputs: { real: string; size: number }[], names: string[]): Promise<JobSettings | undefined> {
  const s: JobSettings = {};
  if (body.combiner === false) s.combiner = false;
  if (body.backupTasks === false) s.backupTasks = false;
  if (body.maxBackupTasks !== undefined) s.maxBackupTasks = body.maxBackupTasks;
  if (body.shuffle !== undefined) s.shuffle = body.shuffle;
  if (body.maxSkippedRecords !== undefined && body.skipBadRecords !== true) throw ERR_BAD_OPTIONS(body.app, 'maxSkippedRecords needs skipBadRecords: true');
  if (body.skipBadRecords === true) s.skipBadRecords = true;
  if (body.maxSkippedRecords !== undefined) s.maxSkippedRecords = body.maxSkippedRecords;
  if (body.partitioner === 'hash') s.partitioner = { type: 'hash' };
  if (body.partitioner === 'range') {
    const reduces = body.reduces ?? 10;
    if (reduces > LIMITS.maxRangeReduces) throw ERR_BAD_OPTIONS(body.app, `the range partitioner takes at most ${LIMITS.maxRangeReduces} reduces (got ${reduces})`);
    if ((app.input ?? 'whole-file') !== 'lines') throw ERR_BAD_OPTIONS(body.app, `app ${body.app} reads whole files: the range partitioner samples line-oriented apps only`);
    let points: string[];
    try {
      points = await sampleSplitPoints({
        app,
        options: body.options ?? {},
        inputs: inputs.map((f, index) => ({ piece: { path: f.real, name: names[index], index, verifyRealPath: true }, size: f.size })),
        reduces,
        maxPointLength: LIMITS.maxSplitPointLength,
      });
    } catch (err) {
      throw ERR_BAD_OPTIONS(body.app, `sampling the input for the range partitioner failed: ${(err as Error)?.message ?? String(err)}`);
    }
    s.partitioner = { type: 'range', points };
  }
  return Object.keys(s).length ? s : undefined;
}

/**
 * The job's inputs are handed to workers by their real paths (workers check
 * at open time that the path still leads to that file), with the names as
 * given for map; its map tasks are the splits planned from the files' sizes
 * (`splitSize`, default `splitBytes`).
 */
export async function validateSubmission(body: JobSubmit, roots: readonly string[], splitBytes = DEFAULT_SPLIT_BYTES, places?: OutputPlaces): Promise<JobSpec> {
  const app = getApp(body.app);
  if (!app) throw ERR_UNKNOWN_APP(body.app, listApps().map((a) => a.name).join(', '));
  const options = body.options ?? {};
  const problem = app.validateOptions?.(options);
  if (problem) throw ERR_BAD_OPTIONS(body.app, problem);
  if (roots.length === 0) throw ERR_NO_INPUT_ROOTS();
  if (body.names && body.names.length !== body.inputs.length) {
    throw ERR_BAD_INPUT(`names has ${body.names.length} entries for ${body.inputs.length} inputs: give one name per input`);
  }
  const inputs = await Promise.all(
    body.inputs.map(async (p, i) => {
      const what = `input ${i} "${p}"`;
      if (!isAbsolute(p)) throw ERR_BAD_INPUT(`${what} is not an absolute path`);
      if (!normalized(p)) throw ERR_BAD_INPUT(`${what} is not a normalized path (no ., .. or empty segments)`);
      let real: string;
      try {
        real = await realpath(p);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw ERR_BAD_INPUT(code === 'ENOENT' || code === 'ENOTDIR' ? `${what} does not exist` : `${what} cannot be read (${code})`);
      }
      if (!roots.some((r) => under(real, r))) throw ERR_INPUT_OUTSIDE_ROOTS(p, roots.join(', '));
      const st = await stat(real);
      if (!st.isFile()) throw ERR_BAD_INPUT(`${what} is not a regular file`);
      return { real, size: st.size };
    }),
  );
  const files = inputs.map((f) => f.real);
  const names = body.names ?? body.inputs;
  const splits = (app.input ?? 'whole-file') === 'lines' ? planSplits(app, inputs.map((f) => f.size), body.splitSize ?? splitBytes) : undefined;
  const maps = splits?.length ?? inputs.length;
  if (maps > LIMITS.maxSplits) {
    throw ERR_BAD_INPUT(`the inputs make ${maps} map tasks (limit ${LIMITS.maxSplits}): give a bigger splitSize`);
  }
  let output: string | undefined;
  if (body.output !== undefined) {
    if (!isAbsolute(body.output)) throw ERR_BAD_OUTPUT(`output "${body.output}" is not an absolute path`);
    if (!normalized(body.output.length > 1 ? body.output.replace(/\/+$/, '') : body.output)) {
      throw ERR_BAD_OUTPUT(`output "${body.output}" is not a normalized path (no ., .. or empty segments)`);
    }
    output = body.output.length > 1 ? body.output.replace(/\/+$/, '') : body.output;
    if (output === '/') throw ERR_BAD_OUTPUT('output must not be the root directory');
    const long = output.split('/').find((seg) => Buffer.byteLength(seg) > 255);
    if (long !== undefined) throw ERR_BAD_OUTPUT(`output "${output}" has a path segment longer than 255 bytes`);
    let st: Stats | undefined;
    try {
      st = await stat(output);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw ERR_BAD_OUTPUT(`output "${output}" lies under an existing file`);
      if (code === 'ENAMETOOLONG') throw ERR_BAD_OUTPUT(`output "${output}" is too long for the file system`);
      if (code !== 'ENOENT') throw ERR_BAD_OUTPUT(`output "${output}" cannot be used (${code})`);
    }
    if (st && !st.isDirectory()) throw ERR_BAD_OUTPUT(`output "${output}" exists and is not a directory`);
    if (places) output = await checkOutput(output, roots, places);
  }
  const settings = await jobSettings(body, app, inputs, names);
  return {
    app: body.app,
    inputs: files,
    ...(settings ? { settings } : {}),
    ...(names.some((n, i) => n !== files[i]) ? { names } : {}),
    ...(splits ? { splits } : {}),
    reduces: body.reduces ?? 10,
    output,
    options,
    name: body.name,
  };
}
