/** PhiDetector properties over random arrival histories (fast-check). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PhiDetector } from '../src/detector.ts';

const config = { threshold: 8, windowSize: 50, minSdMs: 5, minMs: 100, maxMs: 1000 };
const history = fc.record({
  gaps: fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 0, maxLength: 120 }),
  ticks: fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 0, maxLength: 40 }),
});

function build(h: { gaps: number[]; ticks: number[] }): { d: PhiDetector; last: number } {
  const d = new PhiDetector(config);
  let t = 1000;
  d.heartbeat(t);
  for (const g of h.gaps) d.heartbeat((t += g));
  let k = t;
  for (const g of h.ticks) d.tick((k += g));
  return { d, last: t };
}

test('suspicion: never before minMs, always at maxMs, monotone in the silence, and the window is where it starts', () => {
  fc.assert(
    fc.property(history, fc.integer({ min: 0, max: 2000 }), (h, silence) => {
      const { d, last } = build(h);
      const w = d.windowMs();
      assert.ok(w >= config.minMs && w <= config.maxMs, `window ${w}`);
      if (silence < config.minMs) assert.equal(d.suspect(last + silence), false);
      if (silence >= config.maxMs) assert.equal(d.suspect(last + silence), true);
      if (d.suspect(last + silence)) assert.ok(d.suspect(last + silence + 1), 'monotone');
      assert.equal(d.suspect(last + w), true);
      if (w > config.minMs) assert.equal(d.suspect(last + w - 2), false);
    }),
    { numRuns: 300 },
  );
});

test('a longer pause seen (peer gap or own tick) never shortens the window', () => {
  fc.assert(
    fc.property(history, fc.integer({ min: 1, max: 900 }), (h, pause) => {
      const a = build(h).d.windowMs();
      const { d } = build({ ...h, ticks: [...h.ticks, pause] });
      assert.ok(d.windowMs() >= a - 1, `${d.windowMs()} < ${a}`);
    }),
    { numRuns: 200 },
  );
});
