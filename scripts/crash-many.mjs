#!/usr/bin/env node
// Runs the lab's crash test (tests/test/lab-crash.test.ts) N times in a row
// (default 30), one at a time, and prints the pass count. Usage:
//   npm run crash-many -- [N]
// The output of each failing run is kept in a log file named at the end.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const n = Number(process.argv[2] ?? 30);
if (!Number.isInteger(n) || n < 1) {
  console.error(`usage: npm run crash-many -- [N]   (N a positive integer, got "${process.argv[2]}")`);
  process.exit(2);
}

// The test's `mr` processes run the compiled JavaScript: bring dist/ up to date first.
if (spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--quiet'], { stdio: 'inherit' }).status !== 0) process.exit(1);

function once() {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['--conditions=@mr/source', '--import', 'tsx', '--test', '--test-reporter=tap', '--test-timeout=300000', 'test/lab-crash.test.ts'],
      { cwd: join(root, 'tests'), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('close', (code) => resolve({ ok: code === 0 && /^# pass 1$/m.test(out), secs: (Date.now() - started) / 1000, out }));
  });
}

let passed = 0;
const failures = [];
let logDir;
for (let i = 1; i <= n; i++) {
  const r = await once();
  if (r.ok) passed++;
  else {
    logDir ??= mkdtempSync(join(tmpdir(), 'mr-crash-many-'));
    const file = join(logDir, `run-${i}.log`);
    writeFileSync(file, r.out);
    failures.push(file);
  }
  console.log(`run ${i}/${n}: ${r.ok ? 'PASS' : 'FAIL'} in ${r.secs.toFixed(1)} s (${passed} passed so far)`);
}
console.log(`crash test: ${passed}/${n} passed`);
if (failures.length) console.log(`logs of the failing runs:\n  ${failures.join('\n  ')}`);
process.exit(passed === n ? 0 : 1);
