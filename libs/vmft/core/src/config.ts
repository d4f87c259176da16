import { createError } from '@mr/errors';
import type { FtConfig, ResolvedConfig } from './types.ts';

export const FT_ERR_BAD_CONFIG = createError<[string]>('FT_ERR_BAD_CONFIG', 'bad FT core config: %s', 500, { retryable: false });
/** The backup's replay disagrees with the log: a hard error (the backup must be rebuilt by a join). */
export const FT_ERR_DIVERGENCE = createError<[string]>('FT_ERR_DIVERGENCE', 'replay diverged: %s', 500, { retryable: false });
export const FT_ERR_BAD_SNAPSHOT_ENVELOPE = createError<[string]>('FT_ERR_BAD_SNAPSHOT', 'bad FT snapshot: %s', 400, { retryable: false });

export const DEFAULTS = {
  join: false,
  withBackup: true,
  startEpoch: 1,
  suspectTicks: 10,
  transferTicks: 250,
  heartbeatTicks: 2,
  resendTicks: 5,
  sliceInstructions: 100_000,
  progressInstructions: 0,
  maxUnackedBytes: 4 * 1024 * 1024,
  maxLagInstructions: 100_000_000,
  minLagInstructions: 2_000_000,
  maxLagMs: 200,
  maxHeldOutputs: 10_000,
  maxInboxPackets: 1024,
  checkpointEvery: 64,
  phiThreshold: 8,
  phiWindow: 1000,
  phiMinSdMs: 20,
  suspectMaxMs: 2000,
} as const;

/** Fills defaults and checks limits; throws FT_ERR_BAD_CONFIG naming the field. */
export function validateConfig(c: FtConfig): ResolvedConfig {
  const r = { ...DEFAULTS, ...stripUndefined(c) } as ResolvedConfig;
  // The transfer window defaults to 250 ticks, or the suspicion window if that is longer.
  if (c.transferTicks === undefined && Number.isSafeInteger(r.suspectTicks)) r.transferTicks = Math.max(DEFAULTS.transferTicks, r.suspectTicks);
  if (!r.vmId) throw FT_ERR_BAD_CONFIG('vmId is required');
  if (!r.nodeId) throw FT_ERR_BAD_CONFIG('nodeId is required');
  if (r.role !== 'primary' && r.role !== 'backup') throw FT_ERR_BAD_CONFIG(`role must be primary or backup, got ${String(r.role)}`);
  if (typeof r.random !== 'function') throw FT_ERR_BAD_CONFIG('random (an injected u32 source) is required');
  if (r.join && r.role !== 'backup') throw FT_ERR_BAD_CONFIG('only a backup joins');
  if (r.join && !r.restore) throw FT_ERR_BAD_CONFIG('join needs restore()');
  if (!r.join && !r.machine) throw FT_ERR_BAD_CONFIG('machine is required unless joining');
  const positive = ['phiWindow', 'phiMinSdMs', 'suspectMaxMs', 'suspectTicks', 'transferTicks', 'heartbeatTicks', 'resendTicks', 'sliceInstructions', 'maxUnackedBytes', 'maxLagInstructions', 'minLagInstructions', 'maxHeldOutputs', 'maxInboxPackets', 'startEpoch'] as const;
  for (const k of positive) {
    if (!Number.isSafeInteger(r[k]) || r[k] <= 0) throw FT_ERR_BAD_CONFIG(`${k} must be a positive integer, got ${String(r[k])}`);
  }
  if (!Number.isFinite(r.phiThreshold) || r.phiThreshold < 0) throw FT_ERR_BAD_CONFIG(`phiThreshold must be a non-negative number, got ${String(r.phiThreshold)}`);
  if (r.phiWindow > 100_000) throw FT_ERR_BAD_CONFIG(`phiWindow must be at most 100000, got ${r.phiWindow}`);
  for (const k of ['progressInstructions', 'checkpointEvery', 'maxLagMs'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 0) throw FT_ERR_BAD_CONFIG(`${k} must be a non-negative integer, got ${String(r[k])}`);
  }
  if (r.heartbeatTicks >= r.suspectTicks) throw FT_ERR_BAD_CONFIG('heartbeatTicks must be below suspectTicks');
  if (r.transferTicks < r.suspectTicks) throw FT_ERR_BAD_CONFIG('transferTicks must be at least suspectTicks');
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
