/**
 * `mr local --demo`'s VM workload: once the pair is protected, a retried
 * request answered from the guest's memory (exactly once), 200 incr requests
 * from 4 clients, the final counter and latencies, and both nodes' state hash
 * at the same instruction count.
 */
import type { LocalEnv } from './section.ts';
import type { Member, PairSupervisor } from './vm-pair.ts';

export async function runDemo(
  env: LocalEnv,
  d: {
    pair: PairSupervisor;
    primary: Member;
    backup: Member;
    vmId: string;
    token: string | undefined;
    requests: number;
    clients: number;
  },
): Promise<boolean> {
  const { runLoad, VmClient } = await import('@mr/vmft-client');
  const { primary: p, backup: b } = d;
  const nodes = [p.url, b.url];
  const st = await d.pair.status(p.url);
  env.say(`vm demo: pair protected: primary ${p.id} (epoch ${st?.epoch}) streams its log to backup ${b.id}, which acknowledges it`);
  const key = 'demo';
  const checker = new VmClient({ nodes, vmId: d.vmId, token: d.token });
  try {
    // Exactly once: a retry of an answered request (same session and seq) gets the remembered answer.
    const first = await checker.incr(`${key}-retry`);
    const retry = await checker.requestAt({ session: first.session, seq: first.seq, ackBelow: first.seq }, { op: 'incr', key: `${key}-retry` });
    const remembered = retry.value === first.value && (await checker.get(`${key}-retry`)).value === String(first.value);
    env.say(
      `vm demo: session ${first.session}: incr seq ${first.seq} answered ${first.value}; its retry answered ${retry.value}` +
        (remembered ? ' (the remembered answer: applied once)' : ' (APPLIED AGAIN)'),
    );
    const before = Number((await checker.get(key)).value ?? 0);
    const r = await runLoad({ nodes, vmId: d.vmId, token: d.token, requests: d.requests, clients: d.clients, key, deadlineMs: 30_000 });
    const after = Number((await checker.get(key)).value ?? 0);
    const sorted = [...r.values].sort((x, y) => x - y);
    const once = r.answered === d.requests && sorted.every((v, i) => v === before + i + 1) && after === before + d.requests;
    env.say(
      `vm demo: ${r.answered}/${r.requests} unique incr requests from ${d.clients} clients answered in ${(r.elapsedMs / 1000).toFixed(2)} s; ` +
        `latency p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms`,
    );
    env.say(`vm demo: counter "${key}" = ${after}${once ? ' (every request applied exactly once)' : ` (expected ${before + d.requests}: some requests failed or were applied twice)`}`);
    for (const e of r.errors) env.say(`vm demo: error: ${e}`);

    // Same state at the same instruction: both nodes report the hash of a checkpoint both pass.
    const common = await d.pair.poll(10_000, async () => {
      const [sp, sb] = await Promise.all([d.pair.status(p.url), d.pair.status(b.url)]);
      return sp && sb && sp.hash.value && sp.hash.icount === sb.hash.icount ? { sp, sb } : undefined;
    });
    let agree = false;
    if (common) {
      const { sp, sb } = common;
      agree = sp.hash.value === sb.hash.value;
      env.say(
        `vm demo: state hash at instruction ${sp.hash.icount}: primary ${p.id} ${sp.hash.value}, backup ${b.id} ${sb.hash.value}: ${agree ? 'equal' : 'DIFFERENT'}`,
      );
    } else env.say('vm demo: the nodes reported no common checkpoint within 10 s');
    env.say(
      `vm demo: watch a failover: run  npx mr vm client --nodes ${nodes.join(',')} --load 20000  ` +
        `and meanwhile  kill -9 ${p.sup.pid}  (node ${p.id}, the primary): node ${b.id} takes over, the load loses nothing, and mr local brings ${p.id} back as a new backup (--join)`,
    );
    return once && agree && remembered;
  } finally {
    await checker.close();
  }
}
