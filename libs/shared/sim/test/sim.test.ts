import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng, SimClock, Timeout, runTranscript } from '../src/index.ts';

test('the same seed gives the same sequence; another seed another', () => {
  const a = createRng(42), b = createRng(42), c = createRng(43);
  const sa = Array.from({ length: 20 }, () => a.int(1000));
  const sb = Array.from({ length: 20 }, () => b.int(1000));
  const sc = Array.from({ length: 20 }, () => c.int(1000));
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
});

test('rng values stay in range and cover it', () => {
  const r = createRng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const v = r.range(3, 9);
    assert.ok(v >= 3 && v <= 9);
    seen.add(v);
    const f = r.next();
    assert.ok(f >= 0 && f < 1);
  }
  assert.equal(seen.size, 7);
});

test('SimClock fires timers in due order, ties in insertion order', () => {
  const clock = new SimClock();
  const fired: string[] = [];
  clock.schedule(10, () => fired.push('b'));
  clock.schedule(5, () => fired.push('a'));
  clock.schedule(10, () => fired.push('c'));
  clock.runUntil(7);
  assert.deepEqual(fired, ['a']);
  assert.equal(clock.now(), 7);
  while (clock.step());
  assert.deepEqual(fired, ['a', 'b', 'c']);
  assert.equal(clock.now(), 10);
});

test('Timeout fires after its ticks only while running', () => {
  const t = new Timeout('lease', 3);
  t.tick(); t.tick(); t.tick();
  assert.equal(t.fired(), false);
  t.start();
  t.tick(); t.tick();
  assert.equal(t.fired(), false);
  t.tick();
  assert.equal(t.fired(), true);
  t.reset();
  assert.equal(t.fired(), false);
});

test('transcripts compare outputs and rewrite on update', () => {
  const dir = mkdtempSync(join(tmpdir(), 'transcript-'));
  const f = join(dir, 't.txt');
  writeFileSync(f, '# adds\nadd 1 2\n----\n3\n\nadd a=2 b=5\n----\nwrong\n');
  const handle = (c: { name: string; args: string[]; kv: Record<string, string> }) =>
    String(c.args.length ? Number(c.args[0]) + Number(c.args[1]) : Number(c.kv['a']) + Number(c.kv['b']));
  assert.throws(() => runTranscript(f, handle), /transcript mismatch[\s\S]*--- expected\nwrong\n--- actual\n7/);
  runTranscript(f, handle, { update: true });
  assert.equal(readFileSync(f, 'utf8'), '# adds\nadd 1 2\n----\n3\n\nadd a=2 b=5\n----\n7\n');
  runTranscript(f, handle);
});
