#!/usr/bin/env node
// The `mr` command. Sources are TypeScript, run through tsx's loader.
import { register } from 'tsx/esm/api';

// A process started by a supervisor (`mr local`) with MR_PARENT_PIPE=1 gets a
// pipe from it on stdin that the supervisor never writes to. When the pipe
// closes, the supervisor is gone (even by kill -9): stop as on SIGTERM rather
// than live on as an orphan. unref(): the pipe alone keeps nothing running.
if (process.env.MR_PARENT_PIPE === '1') {
  const stop = () => process.kill(process.pid, 'SIGTERM');
  process.stdin.once('end', stop).once('error', stop);
  process.stdin.resume();
  process.stdin.unref?.();
}

register();
const { main } = await import('../src/main.ts');
const code = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
if (code !== undefined) process.exitCode = code;
