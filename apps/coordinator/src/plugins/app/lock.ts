/**
 * One coordinator per data directory: <data>/coordinator.lock holds the pid
 * of the owner. A lock left by a process that is gone (kill -9) is taken over.
 */
import { openSync, writeSync, closeSync, readFileSync, unlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '@mr/errors';

export const ERR_DATA_DIR_IN_USE = createError<[string, string]>('MR_ERR_DATA_DIR_IN_USE', 'data directory %s is in use by coordinator pid %s', 500);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'coordinator.lock');
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw ERR_DATA_DIR_IN_USE(dir, String(pid));
      unlinkSync(file);
    }
  }
  throw ERR_DATA_DIR_IN_USE(dir, 'unknown');
}
