/**
 * `mr drill` in-process: the catalog, usage errors (exit 2, nothing run) and
 * printing a report. Running drills is tested in apps/drills.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSchedule, type DrillReport } from '@mr/chaos';
import { main } from '../src/index.ts';

async function mr(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(String(c)), cb()) });
  const code = await main(argv, { env: {}, stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
  return { code, stdout, stderr };
}

test('mr drill list names every drill with its invariants; --help shows the subcommands', async () => {
  const r = await mr('drill', 'list');
  assert.equal(r.code, 0);
  for (const d of ['worker-crash-storm', 'coordinator-kill-restart', 'primary-kill-under-load', 'primary-stall', 'primary-backup-partition']) assert.match(r.stdout, new RegExp(`^${d} `, 'm'));
  assert.match(r.stdout, /invariants: .*one-live-primary-per-epoch/);
  const h = await mr('drill', '--help');
  assert.equal(h.code, 0);
  for (const s of ['list', 'run NAME', 'report FILE', 'replay FILE', '--seed']) assert.ok(h.stdout.includes(s), s);
});

test('mr drill usage errors exit 2 and say what is wrong', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mr-drill-cli-'));
  try {
    writeFileSync(join(dir, 'not-json'), 'hello');
    writeFileSync(join(dir, 'other.json'), '{"kind":"something"}');
    const cases: [string[], RegExp][] = [
      [['drill'], /a subcommand is required/],
      [['drill', 'explode'], /unknown subcommand "explode"/],
      [['drill', 'run'], /exactly one drill NAME/],
      [['drill', 'run', 'nope'], /unknown drill "nope"; known drills: worker-crash-storm/],
      [['drill', 'run', 'primary-stall', '--seed', '-3'], /bad seed/],
      [['drill', 'run', 'primary-stall', '--seed', '4294967296'], /bad seed/],
      [['drill', 'run', 'primary-stall', '--speed', '3'], /Unknown option '--speed'/],
      [['drill', 'list', 'extra'], /takes no arguments/],
      [['drill', 'report'], /exactly one report FILE/],
      [['drill', 'report', join(dir, 'missing.json')], /ENOENT/],
      [['drill', 'report', join(dir, 'not-json')], /not a drill report/],
      [['drill', 'replay', join(dir, 'other.json')], /not a drill report: missing "kind"/],
    ];
    for (const [argv, re] of cases) {
      const r = await mr(...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.stderr, re, argv.join(' '));
      assert.equal(r.stdout, '', `${argv.join(' ')}: nothing ran`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mr drill report prints the Markdown and exits by the outcome', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mr-drill-cli-'));
  try {
    const report: DrillReport = {
      kind: 'mr-drill-report', schedule: buildSchedule('primary-stall', 3, 'short'), startedAt: '2026-01-01T00:00:00.000Z', durationMs: 10,
      outcome: 'failed', timeline: [], invariants: [{ id: 'no-ack-lost-or-doubled', ok: false, detail: 'incr answer 5 given twice' }], recoveries: [], stats: {},
    };
    writeFileSync(join(dir, 'r.json'), JSON.stringify(report));
    const r = await mr('drill', 'report', join(dir, 'r.json'));
    assert.equal(r.code, 1);
    assert.match(r.stdout, /# Drill primary-stall: FAILED/);
    assert.match(r.stdout, /given twice/);
    assert.match(r.stdout, /\+\d+ms stop primary/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
