/**
 * Seeded simulation: primary + backup + storage over the real CPU and the
 * real guests (kv, bank, timer), with stream breaks, delays, partitions,
 * primary crashes at random instants, joins by state transfer, random client
 * load and random timer jitter. A safety phase with faults is followed by a
 * liveness phase (faults off, partition healed) in which every client must
 * finish. A failure prints its seed; SEED=n replays it (and runs only it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, seedFromEnv, type Rng } from '@mr/sim';
import {
  getGuest, encodeKvRequest, decodeKvResponse, encodeBankRequest, decodeBankResponse, encodeTimerRequest, decodeTimerResponse,
  BANK_ACCOUNTS, BANK_INITIAL, type KvOp,
} from '@mr/vmft-guests';
import { SimCluster, type ClientReply } from './helpers/sim-cluster.ts';

const envSeed = process.env['SEED'];
/** SIM_RUNS=n runs n seeds per guest instead of the default few (soak runs); SIM_BASE shifts them. */
const runs = Number(process.env['SIM_RUNS'] ?? 0);
const shift = Number(process.env['SIM_BASE'] ?? 0);
const SEEDS = (base: number, n: number): number[] =>
  envSeed !== undefined ? [seedFromEnv(process.env, 0)] : Array.from({ length: runs > 0 ? runs : n }, (_, i) => base + shift + i);

/** A client that knows every node, retries the same request id, and follows whoever answers. */
class Client {
  target: string;
  busy = false;
  done = 0;
  #attempt = 0;
  constructor(
    readonly sim: SimCluster,
    readonly id: string,
    readonly rng: Rng,
    readonly total: number,
    readonly make: (n: number) => { packet: Uint8Array; onAnswer: (r: ClientReply) => void },
  ) {
    this.target = [...sim.nodes.keys()][0]!;
  }

  start(): void {
    this.sim.clock.schedule(this.rng.range(0, 20), () => this.#next());
  }

  #next(): void {
    if (this.done >= this.total) return;
    const { packet, onAnswer } = this.make(this.done);
    this.busy = true;
    this.#send(packet, onAnswer);
  }

  #switch(): void {
    const names = [...this.sim.nodes.keys()];
    this.target = names[(names.indexOf(this.target) + 1) % names.length]!;
  }

  #send(packet: Uint8Array, onAnswer: (r: ClientReply) => void): void {
    const attempt = ++this.#attempt;
    const res = this.sim.request(this.target, packet, (r) => {
      if (attempt !== this.#attempt || !this.busy) return; // an answer to an abandoned attempt
      this.busy = false;
      this.#attempt++;
      this.target = r.node;
      onAnswer(r);
      this.done++;
      this.sim.clock.schedule(this.rng.range(0, 15), () => this.#next());
    });
    if (!res.ok) {
      this.#switch();
      this.sim.clock.schedule(this.rng.range(2, 10), () => this.#send(packet, onAnswer));
      return;
    }
    this.sim.clock.schedule(this.rng.range(150, 300), () => {
      if (attempt !== this.#attempt) return;
      this.#switch(); // no answer: retry the same request elsewhere
      this.#send(packet, onAnswer);
    });
  }
}

function finish(sim: SimCluster, clients: Client[], seed: number): void {
  sim.faultsOn = false;
  sim.partitioned = false;
  for (let i = 0; i < 100 && clients.some((c) => c.done < c.total); i++) sim.runFor(100);
  const stuck = clients.filter((c) => c.done < c.total);
  if (stuck.length) sim.violation(`liveness: clients ${stuck.map((c) => `${c.id}(${c.done}/${c.total})`).join(', ')} did not finish`);
  sim.runFor(300); // let the backup catch up and checkpoints compare
  void seed;
}

function report(sim: SimCluster, seed: number): void {
  if (process.env['SIM_STATS']) console.log(`seed ${seed}`, JSON.stringify({ ...sim.stats, crashes: sim.crashes, joins: sim.joins }));
  if (sim.violations.length === 0) return;
  const msg = [`seed ${seed} (replay: SEED=${seed}): ${sim.violations.length} violation(s)`, ...sim.violations.slice(0, 10), '--- last events:', ...sim.log.slice(-60)].join('\n');
  assert.fail(msg);
}

/** One request through any node until answered, after the run (for final state reads). */
function ask(sim: SimCluster, packet: Uint8Array): ClientReply | undefined {
  let answer: ClientReply | undefined;
  const c = new Client(sim, 'checker', sim.rng.fork(), 1, () => ({ packet, onAnswer: (r) => (answer = r) }));
  c.target = sim.livePrimary()?.name ?? c.target;
  c.start();
  for (let i = 0; i < 50 && !answer; i++) sim.runFor(50);
  return answer;
}

for (const seed of SEEDS(1000, 12)) {
  test(`sim kv seed=${seed}: exactly-once incr across failovers, lockstep hashes, output rule`, () => {
    const rng = createRng(seed);
    const sim = new SimCluster({ program: getGuest('kv'), rng, pCrash: 0.04, pBreak: 0.06, pPartition: 0.03 });
    sim.startPair();
    const acked = new Map<string, number>(); // "client/request" → the counter value answered
    const clients: Client[] = [];
    for (let i = 0; i < 4; i++) {
      const id = `c${i}`;
      const crng = rng.fork();
      let session = 0;
      clients.push(
        new Client(sim, id, crng, 41, (n) => {
          // Request 0 opens the client's session (a retried open opens another: the first answer wins).
          if (n === 0) {
            return {
              packet: encodeKvRequest({ tag: 0, op: 'open-session' }),
              onAnswer: (r) => {
                const res = decodeKvResponse(r.packet);
                if (res.status !== 'ok') sim.violation(`${id}: open-session answered ${res.status}`);
                session = Number(res.value);
              },
            };
          }
          const op: KvOp = crng.chance(0.8) ? 'incr' : crng.pick(['get', 'put', 'append'] as const);
          const requestId = `${session}/${n}`;
          const key = op === 'incr' ? 'x' : `k${i}`;
          // One request at a time: seq n acknowledges every earlier answer.
          const packet = encodeKvRequest({ tag: 0, op, session, seq: n, ackBelow: n, key, ...(op === 'put' || op === 'append' ? { value: `v${n}` } : {}) });
          return {
            packet,
            onAnswer: (r) => {
              const res = decodeKvResponse(r.packet);
              if (op === 'incr') {
                if (res.status !== 'ok') sim.violation(`${id}/${requestId}: incr answered ${res.status}`);
                acked.set(`${id}/${requestId}`, Number(res.value));
              }
            },
          };
        }),
      );
    }
    sim.runFor(10);
    for (const c of clients) c.start();
    sim.runFor(3000);
    finish(sim, clients, seed);
    const values = [...acked.values()].sort((a, b) => a - b);
    const distinct = new Set(values);
    if (distinct.size !== values.length) sim.violation(`an incr was applied twice: answered values ${values.join(',')}`);
    const final = ask(sim, encodeKvRequest({ tag: 0, op: 'get', session: 0, seq: 0, ackBelow: 0, key: 'x' }));
    if (!final) sim.violation('final get of x was never answered');
    else {
      const v = Number(decodeKvResponse(final.packet).value);
      if (v !== acked.size) sim.violation(`counter x is ${v} but ${acked.size} distinct incr requests were acknowledged`);
      if (values.length && values[values.length - 1] !== v) sim.violation(`largest acknowledged incr answer ${values[values.length - 1]} != final counter ${v}`);
    }
    if (sim.stats.checkpointsCompared === 0) sim.violation('no checkpoint was ever compared between two nodes');
    report(sim, seed);
  });
}

for (const seed of SEEDS(2000, 4)) {
  test(`sim bank seed=${seed}: transfers applied once, total conserved`, () => {
    const rng = createRng(seed);
    const sim = new SimCluster({ program: getGuest('bank'), rng, pCrash: 0.04 });
    sim.startPair();
    const model = new Array<number>(BANK_ACCOUNTS).fill(BANK_INITIAL);
    const clients: Client[] = [];
    let xid = 1;
    for (let i = 0; i < 3; i++) {
      const crng = rng.fork();
      clients.push(
        new Client(sim, `c${i}`, crng, 30, () => {
          const from = crng.int(BANK_ACCOUNTS), to = crng.int(BANK_ACCOUNTS), amount = crng.range(1, 400);
          const x = xid++;
          return {
            packet: encodeBankRequest({ tag: 0, op: 'transfer', from, to, amount, xid: x }),
            onAnswer: (r) => {
              const res = decodeBankResponse(r.packet);
              if (res.status === 'ok') {
                model[from]! -= amount;
                model[to]! += amount;
              }
            },
          };
        }),
      );
    }
    sim.runFor(20);
    for (const c of clients) c.start();
    sim.runFor(2500);
    finish(sim, clients, seed);
    const q = ask(sim, encodeBankRequest({ tag: 0, op: 'query' }));
    if (!q) sim.violation('final query never answered');
    else {
      const res = decodeBankResponse(q.packet);
      if (res.total !== BANK_ACCOUNTS * BANK_INITIAL) sim.violation(`total is ${res.total}`);
      if (JSON.stringify(res.balances) !== JSON.stringify(model)) sim.violation(`balances ${res.balances} != acknowledged transfers ${model}`);
    }
    report(sim, seed);
  });
}

for (const seed of SEEDS(3000, 4)) {
  test(`sim timer seed=${seed}: timer interrupts with jitter, clock and random reads replay in lockstep`, () => {
    const rng = createRng(seed);
    const sim = new SimCluster({ program: getGuest('timer'), rng, pCrash: 0.03 });
    sim.startPair();
    let lastTicks = 0;
    const crng = rng.fork();
    const clients = [
      new Client(sim, 'c0', crng, 20, (n) => ({
        packet: n % 5 === 4 ? encodeTimerRequest({ tag: 0, op: 'set-period', periodMs: crng.range(3, 20) }) : encodeTimerRequest({ tag: 0, op: 'query' }),
        onAnswer: (r) => {
          const res = decodeTimerResponse(r.packet);
          if (res.ok && n % 5 !== 4) {
            if (res.ticks < lastTicks) sim.violation(`timer ticks went back from ${lastTicks} to ${res.ticks}`);
            lastTicks = res.ticks;
          }
        },
      })),
    ];
    sim.runFor(20);
    for (const c of clients) c.start();
    sim.runFor(2500);
    finish(sim, clients, seed);
    if (lastTicks === 0) sim.violation('the timer never ticked');
    if (sim.stats.checkpointsCompared === 0) sim.violation('no checkpoint was ever compared between two nodes');
    report(sim, seed);
  });
}
