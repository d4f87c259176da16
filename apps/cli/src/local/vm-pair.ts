/**
 * The FT VM pair of `mr local` under supervision: a storage node and nodes a
 * and b (named fields, each a supervised process), and the repair policy.
 *
 * The storage node is restarted in place (same port, same data). A node of
 * the pair is never restarted in its old role: the survivor has taken over
 * (or gone on alone), and a second "primary" would only be fenced by
 * test-and-set. Instead, once the survivor is the live primary without a
 * backup, the dead node comes back as a NEW backup with `--join <survivor>`
 * (state transfer), so the pair is protected again. A node that stopped
 * serving (it lost test-and-set after a partition) is restarted the same way.
 * If both nodes are gone, the VM's memory went with them (FT survives one
 * failure at a time): a fresh pair starts, at the next epoch.
 *
 * What to do after a node died is the pure `nextRepair` (table-tested);
 * PairSupervisor carries it out.
 */
import { join } from 'node:path';
import { isProtected, vmStatus } from '@mr/vmft-client';
import type { VmStatus } from '@mr/vmft-protocol';
import { Supervised } from './supervisor.ts';
import type { LocalEnv } from './section.ts';

export type Repair = 'join-survivor' | 'fresh-pair' | 'wait';

/** What the supervisor knows of one node: whether its process runs, and its status if it answered. */
export interface NodeObservation {
  running: boolean;
  status: Pick<VmStatus, 'role' | 'live' | 'peer'> | undefined;
}

/** How long a survivor may take to become the live primary on its own before the pair is started afresh. */
export const SURVIVOR_WAIT_MS = 20_000;

/**
 * After node `dead` exited, what to do now, from what is seen of both nodes:
 * - 'join-survivor': the other node is the live primary with no peer: restart
 *   the dead one as a new backup that joins it;
 * - 'fresh-pair': no live primary can come from the other node (its process
 *   is gone, it stopped serving, or it did not go live within `maxWaitMs`):
 *   start both anew at the next epoch;
 * - 'wait': the other node may still go live (it is still detecting the
 *   failure, arbitrating or catching up): look again shortly.
 * The dead node's own observation is not consulted beyond its running flag:
 * a dead node that runs again (someone restarted it) needs no repair ('wait'
 * is never right then, so the caller checks `running` before asking).
 */
export function nextRepair(a: NodeObservation, b: NodeObservation, dead: 'a' | 'b', waitedMs: number, maxWaitMs = SURVIVOR_WAIT_MS): Repair {
  const other = dead === 'a' ? b : a;
  if (!other.running) return 'fresh-pair';
  const s = other.status;
  if (s?.role === 'stopped') return 'fresh-pair';
  if (s && s.live && s.peer.state === 'none') return 'join-survivor';
  return waitedMs >= maxWaitMs ? 'fresh-pair' : 'wait';
}

/** Unref'd: a pending repair or poll never keeps a stopped `mr local` alive. */
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const LISTENING = /^vm .*listening on (http:\/\/[^\s"]+)$/;

/** One supervised process of the pair, with the URL it listens on. */
export class Member {
  readonly sup: Supervised;
  url = '';
  port: number;
  /** Arguments that decide the role at the next (re)start. */
  mode: string[];
  /** An exit the supervisor caused on purpose (no repair). */
  expectExit = false;
  /** Repairs since the pair was last protected with this member in it (for backoff). */
  failures = 0;
  #waiter: { resolve(url: string): void; reject(err: Error): void } | undefined;

  constructor(
    readonly id: string,
    opts: {
      port: number;
      mode: string[];
      baseArgs: (m: Member) => string[];
      env: LocalEnv;
      cwd: string;
      logFile: string;
      autoRestart: boolean;
      onDeath: (m: Member, code: number | null, signal: NodeJS.Signals | null) => void;
    },
  ) {
    this.port = opts.port;
    this.mode = opts.mode;
    this.sup = new Supervised({
      name: `vm-${id}`,
      args: () => opts.baseArgs(this),
      cwd: opts.cwd,
      env: opts.env.childEnv,
      logFile: opts.logFile,
      autoRestart: opts.autoRestart,
      onLine: (line) => {
        const m = LISTENING.exec(line);
        if (!m) return;
        this.url = m[1]!;
        this.port = Number(new URL(this.url).port);
        const w = this.#waiter;
        this.#waiter = undefined;
        w?.resolve(this.url);
      },
      onExit: (code, signal) => {
        const w = this.#waiter;
        this.#waiter = undefined;
        if (w) w.reject(new Error(`vm ${id} exited (code ${code}, signal ${signal}) before listening; see ${opts.logFile}`));
        if (this.expectExit) {
          this.expectExit = false;
          return;
        }
        opts.onDeath(this, code, signal);
      },
    });
  }

  /** Resolves with the URL at the next "listening on" line; rejects if the process exits first. Call right after a (re)start. */
  listening(): Promise<string> {
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }
}

export interface PairOptions {
  env: LocalEnv;
  /** Where the processes keep state (DIR/storage) and their logs go. */
  dir: string;
  logs: string;
  host: string;
  ports: { storage: number; a: number; b: number };
  vmId: string;
  guest: string;
  suspectTicks: number;
  /** The client token, for status reads. */
  token: string | undefined;
}

export class PairSupervisor {
  readonly storage: Member;
  /** Node a (the first primary) and node b (the first backup); set by start(). */
  a!: Member;
  b!: Member;
  #o: PairOptions;
  #peers: string;
  #stopping = false;
  #repairs: Promise<void> = Promise.resolve();
  #monitor: NodeJS.Timeout | undefined;

  constructor(o: PairOptions) {
    this.#o = o;
    const hostInUrl = o.host.includes(':') ? `[${o.host}]` : o.host;
    // The nodes' ports are fixed before either starts: each names the other in --peers (the only
    // URLs it joins, streams its state to, or sends the peer credential to), also across restarts.
    this.#peers = [o.ports.a, o.ports.b].map((p) => `http://${hostInUrl}:${p}`).join(',');
    this.storage = new Member('storage', {
      port: o.ports.storage,
      mode: [],
      // Only this VM, and only its two nodes, may claim it at storage.
      baseArgs: (m) => ['vm', 'storage', '--host', o.host, '--port', String(m.port), '--data', join(o.dir, 'storage'), '--vm', `${o.vmId}=a,b`],
      env: o.env,
      cwd: o.dir,
      logFile: join(o.logs, 'vm-storage.log'),
      autoRestart: true,
      onDeath: (_m, code, signal) => {
        // Said a moment later, and only if this is no shutdown (a Ctrl-C reaches every child at once).
        const line = `vm: storage node exited (code ${code}, signal ${signal}); restarting it on port ${this.storage.port} (the nodes retry until it is back)`;
        setTimeout(() => this.#stopping || o.env.say(line), 300).unref();
      },
    });
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  #node(id: 'a' | 'b', port: number, mode: string[]): Member {
    const o = this.#o;
    return new Member(id, {
      port,
      mode,
      baseArgs: (m) => ['vm', 'node', '--id', id, '--host', o.host, '--port', String(m.port), '--peers', this.#peers, '--storage', this.storage.url, '--guest', o.guest, '--vm', o.vmId, '--suspect-ticks', String(o.suspectTicks), ...m.mode],
      env: o.env,
      cwd: o.dir,
      logFile: join(o.logs, `vm-${id}.log`),
      autoRestart: false,
      onDeath: (m, code, signal) => {
        if (this.#stopping) return;
        this.#repairs = this.#repairs.then(() => this.repair(m, `code ${code}, signal ${signal}`)).catch((err: Error) => o.env.say(`vm: repair of node ${m.id} failed: ${err.message}`));
      },
    });
  }

  /** Starts storage, then b (backup), then a (primary, streaming to b); resolves once all three listen. */
  async start(): Promise<void> {
    try {
      await this.storage.listening();
      this.b = this.#node('b', this.#o.ports.b, ['--role', 'backup']);
      await this.b.listening();
      this.a = this.#node('a', this.#o.ports.a, ['--role', 'primary', '--peer', this.b.url]);
      await this.a.listening();
    } catch (err) {
      await this.stop();
      throw err;
    }
    // A node that stopped serving (it lost test-and-set, e.g. after a partition) protects nothing: restart it as a backup.
    let checking = false;
    this.#monitor = setInterval(() => {
      if (checking || this.#stopping) return;
      checking = true;
      void (async () => {
        for (const m of [this.a, this.b]) {
          if (!m.sup.running || !m.url) continue;
          const s = await this.status(m.url);
          if (s?.role === 'stopped' && !this.#stopping) {
            this.#o.env.say(`vm: node ${m.id} stopped serving (${s.reason ?? 'no reason given'}); restarting it as a backup of the live node`);
            m.sup.child?.kill('SIGTERM');
          }
        }
      })().finally(() => (checking = false));
    }, 2000);
    this.#monitor.unref();
  }

  status(url: string): Promise<VmStatus | undefined> {
    return vmStatus(url, { vmId: this.#o.vmId, token: this.#o.token });
  }

  /** Polls `fn` every 50 ms until it returns a value, `ms` pass, or `give` says to give up. */
  async poll<T>(ms: number, fn: () => Promise<T | undefined>, give: () => boolean = () => false): Promise<T | undefined> {
    const deadline = Date.now() + ms;
    while (!this.#stopping && !give() && Date.now() < deadline) {
      const v = await fn();
      if (v !== undefined) return v;
      await sleep(50);
    }
    return undefined;
  }

  /** Both statuses once `p` protects the VM with `b` as its backup (isProtected). */
  async protectedBy(p: Member, b: Member): Promise<{ p: VmStatus; b: VmStatus } | undefined> {
    const [sp, sb] = await Promise.all([this.status(p.url), this.status(b.url)]);
    return isProtected(sp, sb) ? { p: sp!, b: sb! } : undefined;
  }

  /** The live primary and its backup, if the pair is protected now. */
  async currentPair(): Promise<{ primary: Member; backup: Member } | undefined> {
    if ((await this.protectedBy(this.a, this.b)) !== undefined) return { primary: this.a, backup: this.b };
    if ((await this.protectedBy(this.b, this.a)) !== undefined) return { primary: this.b, backup: this.a };
    return undefined;
  }

  /** Starts a member again and waits for it to listen (its exit, if any, queues another repair). */
  async #restart(m: Member): Promise<boolean> {
    if (!m.sup.restart()) return false;
    const l = m.listening();
    try {
      await l;
      return true;
    } catch {
      return false;
    }
  }

  /** Brings the pair back to protected after node `dead` exited. */
  async repair(dead: Member, how: string): Promise<void> {
    const say = this.#o.env.say;
    // A Ctrl-C in a terminal reaches every child at once: give `mr local`'s own handler the moment to say so.
    await sleep(300);
    if (this.#stopping || dead.sup.running) return;
    const backoffMs = dead.failures > 0 ? Math.min(30_000, 500 * 2 ** dead.failures) : 0;
    dead.failures++;
    say(`vm: node ${dead.id} exited (${how})${backoffMs ? `; it failed to come back before, waiting ${backoffMs / 1000} s` : ''}`);
    await sleep(backoffMs);
    if (this.#stopping || dead.sup.running) return;
    const other = dead === this.a ? this.b : this.a;
    const deadId = dead === this.a ? 'a' : 'b';
    const started = Date.now();
    let decision: Repair = 'wait';
    let live: VmStatus | undefined;
    while (decision === 'wait' && !this.#stopping) {
      live = other.sup.running ? await this.status(other.url) : undefined;
      const seen = (m: Member, s: VmStatus | undefined): NodeObservation => ({ running: m.sup.running, status: m === other ? s : undefined });
      decision = nextRepair(seen(this.a, live), seen(this.b, live), deadId, Date.now() - started);
      if (decision === 'wait') await sleep(50);
    }
    if (this.#stopping) return;
    if (decision === 'join-survivor') {
      say(`vm: node ${other.id} is the live primary (epoch ${live!.epoch}); restarting ${dead.id} as a new backup: --join ${other.url}`);
      dead.mode = ['--join', other.url];
      if (!(await this.#restart(dead))) return;
      const p = await this.poll(30_000, () => this.protectedBy(other, dead), () => !dead.sup.running || !other.sup.running);
      if (p) {
        dead.failures = other.failures = 0;
        say(`vm: protected again: primary ${other.id} (pid ${other.sup.pid}), backup ${dead.id} (pid ${dead.sup.pid}), epoch ${p.p.epoch}`);
      }
      return;
    }
    // No live primary to join: both nodes are gone (or the survivor stopped too).
    say(`vm: no live primary left (nodes ${dead.id} and ${other.id} both down or stopped): the VM's memory is lost (FT survives one failure at a time); starting a fresh pair at the next epoch`);
    const { a, b } = this;
    for (const m of [a, b]) {
      if (m.sup.running) {
        m.expectExit = true;
        m.sup.child?.kill('SIGKILL');
        await new Promise<void>((r) => m.sup.child?.once('close', () => r()) ?? r());
      }
    }
    b.mode = ['--role', 'backup'];
    if (!(await this.#restart(b))) return;
    a.mode = ['--role', 'primary', '--peer', b.url];
    if (!(await this.#restart(a))) return;
    const p = await this.poll(30_000, () => this.protectedBy(a, b), () => !a.sup.running || !b.sup.running);
    if (p) {
      a.failures = b.failures = 0;
      say(`vm: fresh pair protected: primary a (pid ${a.sup.pid}), backup b (pid ${b.sup.pid}), epoch ${p.p.epoch}`);
    }
  }

  /** From now on exits are expected (shutdown): nothing is restarted or repaired. */
  halt(): void {
    this.#stopping = true;
    for (const m of [this.storage, this.a, this.b]) m?.sup.noRestart();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#monitor) clearInterval(this.#monitor);
    await Promise.all([this.a, this.b].filter((m) => m !== undefined).map((m) => m.sup.stop()));
    await this.storage.sup.stop();
  }
}
