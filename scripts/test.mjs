#!/usr/bin/env node
// The whole test suite: lint, dependency rules, then typecheck and test of
// every project through Nx. Prints the output as it goes and, last, one line
// "N passed, N failed" summed over every node:test run.
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
let passed = 0, failed = 0, skipped = 0;

function run(cmd, args, { count = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NX_TUI: 'false', NX_DAEMON: 'false', FORCE_COLOR: '0' } });
    let buf = '';
    const onData = (chunk, out) => {
      out.write(chunk);
      if (!count) return;
      buf += chunk.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        // node:test TAP summary lines, possibly prefixed by Nx's project label.
        const m = /(?:^|\s)# (pass|fail|skipped|todo) (\d+)\s*$/.exec(line);
        if (m) {
          if (m[1] === 'pass') passed += Number(m[2]);
          else if (m[1] === 'fail') failed += Number(m[2]);
          else skipped += Number(m[2]);
        }
      }
    };
    child.stdout.on('data', (c) => onData(c, process.stdout));
    child.stderr.on('data', (c) => onData(c, process.stderr));
    child.on('close', (code) => resolve(code ?? 1));
  });
}

const started = Date.now();
let code = 0;
// Every bin, service and worker thread runs the compiled JavaScript in dist/:
// bring it up to date first (incremental, under a second), so no test runs old code.
code ||= await run('node', ['scripts/build.mjs']);
code ||= await run('npx', ['eslint', '.']);
if (code === 0) code ||= await run('node', ['scripts/check-boundaries.mjs']);
const nxCode = await run('npx', ['nx', 'run-many', '-t', 'typecheck', 'test', '--output-style=static', '--parallel=2', ...process.argv.slice(2)], { count: true });
code ||= nxCode;
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\ntest suite ${code === 0 && failed === 0 ? 'green' : 'RED'} in ${secs} s`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(code || (failed ? 1 : 0));
