/**
 * A VM client load run as its own process, for a client on another "host"
 * (tests/src/netns.ts): N unique incr requests from C clients (runLoad, one
 * session each, retrying on both nodes with the same ids). Prints
 * "answered K" after every answer (a test takes a link down at some K), then
 * the report as one JSON line: "report {...}".
 *
 *   node tests/src/vm-load-main.mjs URL,URL REQUESTS CLIENTS
 *
 * MR_TOKEN from the environment. Plain JavaScript over the compiled packages (no tsx start-up).
 */
import { runLoad } from '@mr/vmft-client';

const [nodes, requests, clients] = process.argv.slice(2);
if (!nodes || !requests || !clients) {
  console.error('usage: vm-load-main.mjs URL,URL REQUESTS CLIENTS');
  process.exit(2);
}
const report = await runLoad({
  nodes: nodes.split(','),
  vmId: 'vm1',
  token: process.env['MR_TOKEN'] || undefined,
  requests: Number(requests),
  clients: Number(clients),
  deadlineMs: 60_000,
  attemptTimeoutMs: 1000,
  onAnswer: (done) => process.stdout.write(`answered ${done}\n`),
});
process.stdout.write(`report ${JSON.stringify(report)}\n`);
