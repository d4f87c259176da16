#!/usr/bin/env node
// The `mr` command. Runs the compiled JavaScript in ../dist (built from ../src
// by scripts/build.mjs: `npm ci` and `npm test` build it; `npm run build` by hand).
// No TypeScript loader at run time; source maps point stack traces at the .ts.
process.setSourceMapsEnabled(true);

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

let main;
try {
  ({ main } = await import('../dist/main.js'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  process.stderr.write(`mr: the compiled JavaScript is missing (${err.message.split('\n')[0]}).\nrun \`npm run build\` (or \`npm ci\`) at the repository root.\n`);
  process.exit(70);
}
const code = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
if (code !== undefined) process.exitCode = code;
