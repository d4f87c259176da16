export { createRng, type Rng } from './rng.ts';
export { SimClock, Timeout } from './clock.ts';
export { runTranscript, type TranscriptCommand, type TranscriptResult } from './transcript.ts';

/** A seed from SEED in the environment (for replaying a failing run) or the given default. */
export function seedFromEnv(env: Record<string, string | undefined>, fallback: number): number {
  const s = env['SEED'];
  if (s === undefined || s === '') return fallback;
  const n = Number(s);
  if (!Number.isInteger(n)) throw new Error(`SEED must be an integer, got ${s}`);
  return n;
}
