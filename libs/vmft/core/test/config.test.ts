import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FtReplica, validateConfig } from '../src/index.ts';

test('config validation names the bad field', () => {
  const base = { vmId: 'vm1', nodeId: 'p', role: 'primary' as const, random: () => 4 };
  assert.throws(() => validateConfig({ ...base }), { code: 'FT_ERR_BAD_CONFIG', message: /machine is required/ });
  assert.throws(() => validateConfig({ ...base, role: 'backup', join: true }), { code: 'FT_ERR_BAD_CONFIG', message: /restore/ });
  assert.throws(() => validateConfig({ ...base, join: true, restore: () => { throw new Error('x'); } }), { message: /only a backup joins/ });
  assert.throws(() => new FtReplica({ ...base, role: 'backup', join: true, restore: () => { throw new Error('x'); }, suspectTicks: 0 }), {
    message: /suspectTicks must be a positive integer/,
  });
  assert.throws(() => validateConfig({ ...base, role: 'backup', join: true, restore: () => { throw new Error('x'); }, heartbeatTicks: 10, suspectTicks: 5 }), {
    message: /heartbeatTicks must be below suspectTicks/,
  });
  const r = validateConfig({ ...base, role: 'backup', join: true, restore: () => { throw new Error('x'); } });
  assert.equal(r.suspectTicks, 10);
});
