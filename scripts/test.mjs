#!/usr/bin/env node
// The whole test suite: lint, dependency rules, then typecheck and test of
// every project through Nx. Prints the output as it goes and, last, one line
// "N passed, N failed" summed over every node:test run.
//
// The multi-process project (@mr/tests, about two thirds of the wall time, mostly
// waiting on real processes and timeouts) runs beside the others instead of after
// them: the suite's wall time is the longer of the two streams, not their sum.
// Its lines are prefixed "[tests] ". With arguments (e.g. --projects=@mr/worker)
// everything goes through one `nx run-many` as given.
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
let passed = 0, failed = 0, skipped = 0;

function run(cmd, args, { count = false, prefix = '' } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NX_TUI: 'false', NX_DAEMON: 'false', FORCE_COLOR: '0' } });
    // Whole lines only, so two streams running at once never garble each other.
    const onData = (state, out) => (chunk) => {
      state.buf += chunk.toString();
      let i;
      while ((i = state.buf.indexOf('\n')) >= 0) {
        const line = state.buf.slice(0, i);
        state.buf = state.buf.slice(i + 1);
        out.write(`${prefix}${line}\n`);
        if (!count) continue;
        // node:test TAP summary lines, possibly prefixed by Nx's project label.
        const m = /(?:^|\s)# (pass|fail|skipped|todo) (\d+)\s*$/.exec(line);
        if (m) {
          if (m[1] === 'pass') passed += Number(m[2]);
          else if (m[1] === 'fail') failed += Number(m[2]);
          else skipped += Number(m[2]);
        }
      }
    };
    const outState = { buf: '' }, errState = { buf: '' };
    child.stdout.on('data', onData(outState, process.stdout));
    child.stderr.on('data', onData(errState, process.stderr));
    child.on('close', (code) => {
      if (outState.buf) process.stdout.write(`${prefix}${outState.buf}\n`);
      if (errState.buf) process.stderr.write(`${prefix}${errState.buf}\n`);
      resolve(code ?? 1);
    });
  });
}

const started = Date.now();
let code = 0;
// Every bin, service and worker thread runs the compiled JavaScript in dist/:
// bring it up to date first (incremental, under a second), so no test runs old code.
code ||= await run('node', ['scripts/build.mjs']);
code ||= await run('npx', ['eslint', '.']);
if (code === 0) code ||= await run('node', ['scripts/check-boundaries.mjs']);
const nx = (...extra) => ['nx', 'run-many', '-t', 'typecheck', 'test', '--output-style=static', ...extra];
const given = process.argv.slice(2);
if (given.length > 0) {
  code = (await run('npx', nx('--parallel=2', ...given), { count: true })) || code;
} else {
  const multiProcess = (async () => {
    const tc = await run('npm', ['run', '--silent', 'typecheck', '-w', '@mr/tests'], { prefix: '[tests] ' });
    const t = await run('npm', ['run', '--silent', 'test', '-w', '@mr/tests'], { count: true, prefix: '[tests] ' });
    return tc || t;
  })();
  const rest = run('npx', nx('--parallel=1', '--exclude=@mr/tests'), { count: true });
  const codes = await Promise.all([multiProcess, rest]);
  code = codes.find((c) => c !== 0) ?? code;
}
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\ntest suite ${code === 0 && failed === 0 ? 'green' : 'RED'} in ${secs} s`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(code || (failed ? 1 : 0));
