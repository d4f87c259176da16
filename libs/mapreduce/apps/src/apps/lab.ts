/**
 * The lab's test apps (mrapps/crash.go, nocrash.go, early_exit.go,
 * jobcount.go, mtiming.go, rtiming.go), with the same side effects: they
 * exit the process, sleep, and leave mr-worker-* files in the task's cwd.
 */
import { randomInt } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Emit, MrApp } from '../types.ts';
import { sortBytes } from '../order.ts';

/** 33% exit(1), 33% sleep 0..9999 ms, else go on (crash.go maybeCrash). */
async function maybeCrash(): Promise<void> {
  const rr = randomInt(1000);
  if (rr < 330) process.exit(1);
  if (rr < 660) await sleep(randomInt(10 * 1000));
}

function crashMap(filename: string, contents: Buffer, emit: Emit): void {
  emit('a', filename);
  emit('b', String(Buffer.byteLength(filename, 'utf8')));
  emit('c', String(contents.length));
  emit('d', 'xyzzy');
}

function sortedJoin(values: string[]): string {
  return sortBytes(values.slice()).join(' ');
}

export const crash: MrApp = {
  name: 'crash',
  description: 'lab test app: every map/reduce exits 33%, stalls 0-10 s 33%; a/b/c/d lines',
  async map(filename, contents, emit) {
    await maybeCrash();
    crashMap(filename, contents, emit);
  },
  async reduce(_key, values) {
    await maybeCrash();
    return sortedJoin(values);
  },
};

export const nocrash: MrApp = {
  name: 'nocrash',
  description: 'lab test app: crash without the crashes and stalls (its reference output)',
  map(filename, contents, emit) {
    crashMap(filename, contents, emit);
  },
  reduce(_key, values) {
    return sortedJoin(values);
  },
};

export const earlyExit: MrApp = {
  name: 'early_exit',
  description: 'lab test app: `file 1` per input; reduce sleeps 3 s on keys with "sherlock" or "tom"',
  map(filename, _contents, emit) {
    emit(filename, '1');
  },
  async reduce(key, values) {
    if (key.includes('sherlock') || key.includes('tom')) await sleep(3000);
    return String(values.length);
  },
};

let jobcountCount = 0;

export const jobcount: MrApp = {
  name: 'jobcount',
  description: 'lab test app: counts map executions via mr-worker-jobcount-* files in the cwd',
  async map(_filename, _contents, emit, ctx) {
    // Taken before the first await, so overlapping calls in one process get distinct files.
    const n = jobcountCount++;
    // The thread id too: a worker runs each slot's tasks in its own thread, each with its own counter.
    await writeFile(join(ctx.cwd, `mr-worker-jobcount-${process.pid}-${threadId}-${n}`), 'x');
    await sleep(2000 + randomInt(3000));
    emit('a', 'x');
  },
  async reduce(_key, _values, ctx) {
    const names = await readdir(ctx.cwd);
    return String(names.filter((n) => n.startsWith('mr-worker-jobcount')).length);
  },
};

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * mtiming/rtiming's nparallel: announce this process with a file, count the
 * live processes that announced themselves for the same phase, sleep 1 s,
 * withdraw the file.
 */
export async function nparallel(phase: 'map' | 'reduce', cwd: string): Promise<number> {
  const mine = join(cwd, `mr-worker-${phase}-${process.pid}`);
  await writeFile(mine, 'x');
  const pat = new RegExp(`^mr-worker-${phase}-(\\d+)`);
  let ret = 0;
  for (const name of await readdir(cwd)) {
    const m = pat.exec(name);
    if (m && isAlive(Number(m[1]))) ret++;
  }
  await sleep(1000);
  await rm(mine, { force: true });
  return ret;
}

export const mtiming: MrApp = {
  name: 'mtiming',
  description: 'lab test app: map parallelism probe (times-<pid>, parallel-<pid>)',
  async map(_filename, _contents, emit, ctx) {
    const ts = Date.now() / 1000;
    const n = await nparallel('map', ctx.cwd);
    emit(`times-${process.pid}`, ts.toFixed(1));
    emit(`parallel-${process.pid}`, String(n));
  },
  reduce(_key, values) {
    return sortedJoin(values);
  },
};

export const rtiming: MrApp = {
  name: 'rtiming',
  description: 'lab test app: reduce parallelism probe (a..j with live reducers seen)',
  map(_filename, _contents, emit) {
    for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']) emit(k, '1');
  },
  async reduce(_key, _values, ctx) {
    return String(await nparallel('reduce', ctx.cwd));
  },
};
