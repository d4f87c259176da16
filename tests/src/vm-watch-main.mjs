/**
 * Watches one VM node from inside its own "host" (so a partition of that
 * host does not blind the test): prints its status every 25 ms as one JSON
 * line "status {nodeId, role, live, epoch}" (nothing when it does not answer).
 *
 *   node tests/src/vm-watch-main.mjs URL
 *
 * MR_TOKEN from the environment. Runs until killed. Plain JavaScript over the compiled packages
 * (no tsx start-up: it must watch from the first moment).
 */
import { VmClient } from '@mr/vmft-client';

const url = process.argv[2];
if (!url) {
  console.error('usage: vm-watch-main.mjs URL');
  process.exit(2);
}
const token = process.env['MR_TOKEN'] || undefined;
for (;;) {
  const s = await VmClient.status(url, { vmId: 'vm1', token, timeoutMs: 500 });
  if (s) process.stdout.write(`status ${JSON.stringify({ nodeId: s.nodeId, role: s.role, live: s.live, epoch: s.epoch })}\n`);
  await new Promise((r) => setTimeout(r, 25));
}
