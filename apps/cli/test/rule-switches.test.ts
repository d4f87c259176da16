/**
 * Break-the-rule switches: refused at start without --drill-unsafe (exit 2,
 * nothing started), announced loudly with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { main } from '../src/index.ts';
import { ruleSwitches, VM_RULE_SWITCHES } from '../src/rule-switches.ts';
import type { CliContext } from '../src/context.ts';

function ctx(): CliContext & { out: () => string } {
  let stderr = '';
  const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(String(c)), cb()) });
  return { env: {}, stdout: sink(() => {}), stderr: sink((s) => (stderr += s)), out: () => stderr } as CliContext & { out: () => string };
}

test('mr vm node refuses every break-the-rule switch without --drill-unsafe (exit 2, before starting anything)', async () => {
  for (const flag of ['--no-output-rule', '--no-test-and-set', '--no-dedup']) {
    const c = ctx();
    // An unreachable storage URL: had the node started, it would have failed differently (exit 3).
    const code = await main(['vm', 'node', '--id', 'a', '--role', 'backup', '--port', '0', '--storage', 'http://127.0.0.1:1', flag], c);
    assert.equal(code, 2, `${flag}: ${c.out()}`);
    assert.match(c.out(), new RegExp(`${flag}.*chaos drills only; refused unless --drill-unsafe`));
  }
});

test('with --drill-unsafe each switch names its rule and is announced on stderr', () => {
  const c = ctx();
  const rules = ruleSwitches('vm node', { 'no-test-and-set': true, 'no-dedup': true, 'drill-unsafe': true }, VM_RULE_SWITCHES, c);
  assert.deepEqual(rules, ['test-and-set', 'dedup']);
  assert.match(c.out(), /!!! DRILL-UNSAFE: --no-test-and-set: the test-and-set rule is OFF: .*two live primaries/);
  assert.match(c.out(), /!!! DRILL-UNSAFE: --no-dedup: the dedup rule is OFF/);
  assert.deepEqual(ruleSwitches('vm node', { 'drill-unsafe': true }, VM_RULE_SWITCHES, c), [], '--drill-unsafe alone switches nothing off');
});

test('mr coordinator refuses --no-attempt-fencing without --drill-unsafe (exit 2)', async () => {
  const c = ctx();
  const code = await main(['coordinator', '--port', '0', '--data', '/nonexistent/never-created', '--no-attempt-fencing'], c);
  assert.equal(code, 2, c.out());
  assert.match(c.out(), /--no-attempt-fencing.*refused unless --drill-unsafe/);
});
