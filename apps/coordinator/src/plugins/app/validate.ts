/**
 * Checks a job submission against the filesystem and the configured input
 * roots. Throws a coded 4xx error saying what is wrong; changes nothing.
 */
import { realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { isAbsolute, normalize, sep } from 'node:path';
import { DEFAULT_SPLIT_BYTES, getApp, listApps, planSplits } from '@mr/mapreduce-apps';
import { LIMITS, type JobSubmit } from '@mr/mapreduce-protocol';
import type { JobSpec } from '@mr/mapreduce-core';
import { ERR_BAD_INPUT, ERR_BAD_OPTIONS, ERR_BAD_OUTPUT, ERR_INPUT_OUTSIDE_ROOTS, ERR_NO_INPUT_ROOTS, ERR_UNKNOWN_APP } from '../../errors.ts';

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

/**
 * The job's inputs are handed to workers by their real paths (workers check
 * at open time that the path still leads to that file), with the names as
 * given for map; its map tasks are the splits planned from the files' sizes
 * (`splitSize`, default `splitBytes`).
 */
export async function validateSubmission(body: JobSubmit, roots: readonly string[], splitBytes = DEFAULT_SPLIT_BYTES): Promise<JobSpec> {
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
  }
  return {
    app: body.app,
    inputs: files,
    ...(names.some((n, i) => n !== files[i]) ? { names } : {}),
    ...(splits ? { splits } : {}),
    reduces: body.reduces ?? 10,
    output,
    options,
    name: body.name,
  };
}
