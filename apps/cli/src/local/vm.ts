/**
 * The FT VM part of `mr local`: a storage node and a primary/backup pair
 * running the `kv` guest, each a separate OS process (`mr vm storage`,
 * `mr vm node`), plus the --demo client workload.
 *
 * Ports: with --port P (P > 0) the storage node listens on P+1, node a (the
 * first primary) on P+2 and node b (the first backup) on P+3; with --port 0
 * `mr local` picks free ones. A restarted process keeps the port it had.
 *
 * Supervision and repair: PairSupervisor (vm-pair.ts); the demo: vm-demo.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PairSupervisor } from './vm-pair.ts';
import type { LocalEnv, StartedSection } from './section.ts';

export interface VmOptions {
  /** Ports of the storage node and nodes a and b (chosen by `mr local`: --port P + 1..3, or free ones). */
  ports: { storage: number; a: number; b: number };
  host: string;
  /** Demo workload size. */
  demoRequests?: number;
  demoClients?: number;
}

export const VM_ID = 'vm1';
export const VM_GUEST = 'kv';
/**
 * Failure suspicion after 50 ticks of 20 ms = 1 s of silence (`mr vm node`'s
 * default is a few hundred ms). `mr local` runs ten processes on a developer's
 * machine, busy with builds and a cold tsx cache at first start; there a
 * stall that long is common, and each one would be a real (safe, but spurious)
 * failover. A kill -9 is still taken over within about a second.
 */
export const VM_SUSPECT_TICKS = 50;

export async function startVm(env: LocalEnv, o: VmOptions): Promise<StartedSection> {
  const dir = join(env.data, 'vm');
  const logs = join(env.data, 'logs');
  mkdirSync(dir, { recursive: true });
  const token = env.childEnv['MR_TOKEN'] || undefined;
  // The nodes' and storage's own credential: the user's, or (MR_TOKEN without one) a fresh one no client holds.
  const peerToken = env.childEnv['MR_PEER_TOKEN'] || (token ? randomBytes(24).toString('base64url') : undefined);
  const vmEnv: LocalEnv = { ...env, childEnv: { ...env.childEnv, ...(peerToken ? { MR_PEER_TOKEN: peerToken } : {}) } };
  const pair = new PairSupervisor({ env: vmEnv, dir, logs, host: o.host, ports: o.ports, vmId: VM_ID, guest: VM_GUEST, suspectTicks: VM_SUSPECT_TICKS, token });
  await pair.start();
  const { storage, a, b } = pair;

  const nodesArg = `${a.url},${b.url}`;
  return {
    name: 'vm',
    urls: [
      { label: 'storage', url: storage.url },
      { label: 'node a (primary)', url: a.url },
      { label: 'node b (backup)', url: b.url },
    ],
    hints: [
      `FT VM ${VM_ID}, guest ${VM_GUEST}: pids storage ${storage.sup.pid}, a ${a.sup.pid}, b ${b.sup.pid}; logs in ${join(logs, 'vm-*.log')}`,
      `npx mr vm client --nodes ${nodesArg} incr x`,
      `curl -s ${a.url}/v1/vms/${VM_ID}    # role, epoch, instruction count, log, state hash`,
    ],
    demo: async () => {
      const current = await pair.poll(30_000, () => pair.currentPair());
      if (!current) {
        if (pair.stopping) return true;
        env.say(`vm demo: the pair did not become protected within 30 s; see ${join(logs, 'vm-*.log')}`);
        return false;
      }
      const { runDemo } = await import('./vm-demo.ts');
      return runDemo(env, { pair, primary: current.primary, backup: current.backup, vmId: VM_ID, token, requests: o.demoRequests ?? 200, clients: o.demoClients ?? 4 });
    },
    halt: () => pair.halt(),
    stop: () => pair.stop(),
  };
}
