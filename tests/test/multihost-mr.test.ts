/**
 * MapReduce across four "hosts" (network namespaces, tests/src/netns.ts): the
 * coordinator on h1 bound to h1's address, a worker on each of h2, h3, h4
 * reaching it over the bridge, tokens set, and the job submitted by `mr
 * submit --wait` from h4. Each namespace has its own loopback, so anything
 * that quietly assumed 127.0.0.1 would fail here. The hosts share the
 * filesystem (inputs, outputs and, until workers serve them, intermediates).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetLab, type NetHost } from '../src/netns.ts';
import { Lab, diffLines } from '../src/lab.ts';

const LIMIT_MS = 60_000;
const PORT = 7070;

test('multi-host MapReduce: coordinator and three workers on four hosts, tokens set: output equals mr seq', async (t) => {
  const net = await NetLab.open(t, { hosts: 4 });
  if (!net) return;
  const [h1, h2, h3, h4] = net.hosts as [NetHost, NetHost, NetHost, NetHost];
  const lab = new Lab(t);
  const want = await lab.reference('wc');
  const coordinator = net.spawnMr(h1, 'coordinator', ['coordinator', '--host', h1.addr, '--port', String(PORT), '--data', lab.data, '--input-root', lab.root, '--exit-when-done'], { cwd: lab.cwd, env: lab.env, limitMs: LIMIT_MS });
  const url = (await coordinator.waitFor(/coordinator listening on (http:\/\/\S+)/))[1]!;
  assert.equal(url, net.url(h1, PORT), 'the coordinator names the address it is bound to');
  // The job API is not open to anyone on the network: the token is required.
  const anon = await fetch(`${url}/v1/jobs`);
  assert.equal(anon.status, 401);
  const workers = [h2, h3, h4].map((h) =>
    net.spawnMr(h, `worker on h${h.index}`, ['worker', '--coordinator', url, '--coordinator-wait', '5s', '--name', `h${h.index}`], { cwd: lab.cwd, env: lab.env, limitMs: LIMIT_MS }),
  );
  const submit = net.spawnMr(h4, 'submit', ['submit', '--coordinator', url, '--app', 'wc', '--reduces', '5', '--output', '.', '--wait', ...lab.inputs], { cwd: lab.cwd, env: lab.env, limitMs: LIMIT_MS });
  const s = await submit.wait();
  assert.equal(s.code, 0, `mr submit --wait from h4: ${submit.stderr}`);
  const diff = diffLines(lab.sortedOutput(), want);
  assert.equal(diff, undefined, diff);
  assert.equal((await coordinator.wait()).code, 0, coordinator.stderr);
  for (const w of workers) assert.equal((await w.wait()).code, 0, `${w.name}: ${w.stderr}`);
});
