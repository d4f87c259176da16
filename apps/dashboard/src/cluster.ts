/**
 * Polls the coordinator's job and worker API and the VM nodes' status at an
 * interval (with the client token, when one is set) and keeps what the live
 * views show: the latest jobs and workers, the VM pair (roles, epochs,
 * hashes compared at equal instruction counts, protected or not), and bounded
 * histories: workers seen, failovers, job outcomes and notable events.
 */
import { randomBytes } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import type { JobView, WorkerView } from '@mr/mapreduce-protocol';
import type { VmStatus } from '@mr/vmft-protocol';
import { isProtected, vmStatus } from '@mr/vmft-client';

export interface ClusterOptions {
  coordinator?: string | undefined;
  vmNodes: string[];
  storage?: string | undefined;
  vmId: string;
  token?: string | undefined;
  pollMs: number;
  dispatcher?: Dispatcher;
  /** Entries kept in each history (events, failovers, finished jobs, workers gone). */
  historyMax?: number;
}

export interface NodeView {
  url: string;
  up: boolean;
  status?: VmStatus;
}

export interface WorkerHistory {
  id: string;
  name: string;
  pid?: number;
  firstSeenAt: number;
  lastSeenAt: number;
  goneAt?: number;
  tasksSeen: number;
  lastTask?: string;
}

export interface Failover {
  at: number;
  epoch: number;
  fromNode?: string;
  toNode: string;
  /** Time from the last poll that saw the pair protected to the first that saw a live primary in the new epoch. */
  unprotectedMs?: number;
  protectedAgainAt?: number;
}

export interface ClusterEvent {
  at: number;
  kind: 'job' | 'worker' | 'vm' | 'coordinator';
  text: string;
}

export interface HashCheck {
  icount: number;
  values: Record<string, string>;
  agree: boolean;
}

export interface ClusterSnapshot {
  at: number;
  coordinator: { url?: string; up: boolean; error?: string; health?: Record<string, unknown> };
  jobs: JobView[];
  workers: WorkerView[];
  workerHistory: WorkerHistory[];
  vm: {
    vmId: string;
    nodes: NodeView[];
    storage?: { url: string; up: boolean };
    primary?: string;
    backup?: string;
    protected: boolean;
    /** The newest instruction count at which both nodes reported a hash. */
    hash?: HashCheck;
    failovers: Failover[];
  };
  events: ClusterEvent[];
}

/**
 * A W3C traceparent whose sampled flag is off: the services (parent-based
 * sampling) record no spans for the dashboard's own polling, so the traces
 * it shows are the cluster's work, not its watching.
 */
export function untraced(): Record<string, string> {
  return { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00` };
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

export class Cluster {
  readonly opts: ClusterOptions;
  #snap: ClusterSnapshot;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #workerHist = new Map<string, WorkerHistory>();
  #jobStates = new Map<string, string>();
  #hashes = new Map<number, Record<string, string>>();
  #lastProtectedAt: number | undefined;
  #live: { node: string; epoch: number } | undefined;
  #max: number;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.#max = opts.historyMax ?? 200;
    this.#snap = {
      at: 0,
      coordinator: { ...(opts.coordinator ? { url: opts.coordinator } : {}), up: false },
      jobs: [],
      workers: [],
      workerHistory: [],
      vm: { vmId: opts.vmId, nodes: opts.vmNodes.map((url) => ({ url, up: false })), ...(opts.storage ? { storage: { url: opts.storage, up: false } } : {}), protected: false, failovers: [] },
      events: [],
    };
  }

  get snapshot(): ClusterSnapshot {
    return this.#snap;
  }

  start(onUpdate?: () => void): void {
    const tick = async () => {
      if (this.#running) return;
      this.#running = true;
      try {
        await this.pollOnce();
        onUpdate?.();
      } finally {
        this.#running = false;
      }
    };
    void tick();
    this.#timer = setInterval(() => void tick(), this.opts.pollMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  #headers(): Record<string, string> {
    return { ...untraced(), ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}) };
  }

  async #get<T>(url: string): Promise<T> {
    const r = await request(url, { headers: this.#headers(), headersTimeout: 2000, bodyTimeout: 2000, ...(this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : {}) });
    if (r.statusCode !== 200) {
      await r.body.dump();
      throw new Error(`HTTP ${r.statusCode} from ${new URL(url).pathname}`);
    }
    return (await r.body.json()) as T;
  }

  #event(kind: ClusterEvent['kind'], text: string, at: number): void {
    this.#snap.events.unshift({ at, kind, text });
    if (this.#snap.events.length > this.#max) this.#snap.events.length = this.#max;
  }

  async pollOnce(now = Date.now()): Promise<void> {
    const o = this.opts;
    const [coord, nodes, storageUp] = await Promise.all([
      o.coordinator ? this.#pollCoordinator(o.coordinator) : Promise.resolve(undefined),
      Promise.all(o.vmNodes.map(async (url): Promise<NodeView> => {
        const status = await vmStatus(url, { vmId: o.vmId, token: o.token, headers: untraced(), ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}) });
        return status ? { url, up: true, status } : { url, up: false };
      })),
      o.storage ? this.#get(`${o.storage}/healthz`).then(() => true, () => false) : Promise.resolve(undefined),
    ]);
    const snap: ClusterSnapshot = { ...this.#snap, at: now };
    if (coord) {
      if (coord.error !== undefined) {
        if (snap.coordinator.up) this.#event('coordinator', `coordinator unreachable: ${coord.error}`, now);
        snap.coordinator = { ...snap.coordinator, up: false, error: coord.error };
      } else {
        if (!snap.coordinator.up && this.#snap.at > 0) this.#event('coordinator', 'coordinator reachable', now);
        snap.coordinator = { ...(o.coordinator ? { url: o.coordinator } : {}), up: true, health: coord.health };
        snap.jobs = coord.jobs;
        snap.workers = coord.workers;
        this.#trackJobs(coord.jobs, now);
        this.#trackWorkers(coord.workers, now);
      }
    }
    snap.workerHistory = [...this.#workerHist.values()].sort((a, b) => b.lastSeenAt - a.lastSeenAt);
    snap.vm = { ...snap.vm, nodes, ...(o.storage ? { storage: { url: o.storage, up: storageUp === true } } : {}) };
    this.#trackVm(snap, now);
    this.#snap = snap;
  }

  async #pollCoordinator(url: string): Promise<{ error?: undefined; jobs: JobView[]; workers: WorkerView[]; health: Record<string, unknown> } | { error: string }> {
    try {
      const [jobs, workers, health] = await Promise.all([
        this.#get<{ jobs: JobView[] }>(`${url}/v1/jobs`),
        this.#get<{ workers: WorkerView[] }>(`${url}/v1/workers`),
        this.#get<Record<string, unknown>>(`${url}/healthz`),
      ]);
      // Newest first (the coordinator lists in submission order, whatever the ids); the views page through them.
      const list = [...jobs.jobs].reverse();
      return { jobs: list, workers: workers.workers, health };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  #trackJobs(jobs: JobView[], now: number): void {
    for (const j of jobs) {
      const prev = this.#jobStates.get(j.id);
      if (prev === j.state) continue;
      this.#jobStates.set(j.id, j.state);
      if (prev === undefined && FINISHED.has(j.state) && this.#snap.at === 0) continue; // finished before we started
      if (prev === undefined) this.#event('job', `job ${j.id}${j.name ? ` (${j.name})` : ''} submitted: ${j.app}`, now);
      if (FINISHED.has(j.state)) this.#event('job', `job ${j.id} ${j.state}${j.error ? `: ${j.error}` : ''}`, now);
    }
    if (this.#jobStates.size > 4 * this.#max) {
      const keep = new Set(jobs.map((j) => j.id));
      for (const id of this.#jobStates.keys()) if (!keep.has(id)) this.#jobStates.delete(id);
    }
  }

  #trackWorkers(workers: WorkerView[], now: number): void {
    const seen = new Set<string>();
    for (const w of workers) {
      seen.add(w.id);
      let h = this.#workerHist.get(w.id);
      if (!h) {
        h = { id: w.id, name: w.name, pid: w.pid, firstSeenAt: now, lastSeenAt: now, tasksSeen: 0 };
        this.#workerHist.set(w.id, h);
        if (this.#snap.at > 0) this.#event('worker', `worker ${w.name} (${w.id}) registered`, now);
      }
      h.lastSeenAt = now;
      delete h.goneAt;
      const t = w.tasks[0];
      if (t) {
        const label = `${t.jobId} ${t.taskId} #${t.attempt}`;
        if (label !== h.lastTask) h.tasksSeen++;
        h.lastTask = label;
      }
    }
    for (const h of this.#workerHist.values()) {
      if (!seen.has(h.id) && h.goneAt === undefined) {
        h.goneAt = now;
        this.#event('worker', `worker ${h.name} (${h.id}) gone (lost or exited)`, now);
      }
    }
    // Bounded: the oldest gone workers go first.
    if (this.#workerHist.size > this.#max) {
      const gone = [...this.#workerHist.values()].filter((h) => h.goneAt !== undefined).sort((a, b) => a.goneAt! - b.goneAt!);
      for (const h of gone.slice(0, this.#workerHist.size - this.#max)) this.#workerHist.delete(h.id);
    }
  }

  #trackVm(snap: ClusterSnapshot, now: number): void {
    const ups = snap.vm.nodes.filter((n) => n.status);
    const live = ups.find((n) => n.status!.live);
    const backup = live ? ups.find((n) => n !== live && n.status!.role === 'backup' && n.status!.epoch === live.status!.epoch) : undefined;
    const prot = !!live && !!backup && isProtected(live.status, backup.status);
    const vm = { ...snap.vm, protected: prot, failovers: [...snap.vm.failovers] };
    delete vm.primary;
    delete vm.backup;
    if (live) vm.primary = live.status!.nodeId;
    if (backup) vm.backup = backup.status!.nodeId;

    if (live) {
      const cur = { node: live.status!.nodeId, epoch: live.status!.epoch };
      const prev = this.#live;
      if (prev && cur.epoch > prev.epoch) {
        const f: Failover = { at: now, epoch: cur.epoch, ...(prev.node !== cur.node ? { fromNode: prev.node } : {}), toNode: cur.node };
        if (this.#lastProtectedAt !== undefined) f.unprotectedMs = now - this.#lastProtectedAt;
        vm.failovers.unshift(f);
        if (vm.failovers.length > this.#max) vm.failovers.length = this.#max;
        this.#event('vm', prev.node !== cur.node ? `failover: node ${cur.node} took over from ${prev.node} (epoch ${cur.epoch})` : `node ${cur.node} went on alone (epoch ${cur.epoch})`, now);
      }
      this.#live = cur;
    }
    if (prot) {
      const last = vm.failovers[0];
      if (last && last.protectedAgainAt === undefined) {
        vm.failovers[0] = { ...last, protectedAgainAt: now };
        this.#event('vm', `protected again: primary ${vm.primary}, backup ${vm.backup} (epoch ${live!.status!.epoch})`, now);
      }
      this.#lastProtectedAt = now;
    } else if (snap.vm.protected) this.#event('vm', 'the VM pair is not protected', now);

    // Hashes agree when both nodes reported the same value at the same instruction count.
    for (const n of ups) {
      const h = n.status!.hash;
      if (!h.value) continue;
      const rec = this.#hashes.get(h.icount) ?? {};
      rec[n.status!.nodeId] = h.value;
      this.#hashes.set(h.icount, rec);
    }
    while (this.#hashes.size > 64) this.#hashes.delete(this.#hashes.keys().next().value as number);
    let best: HashCheck | undefined;
    for (const [icount, values] of this.#hashes) {
      const vals = Object.values(values);
      if (vals.length < 2) continue;
      if (!best || icount > best.icount) best = { icount, values, agree: vals.every((v) => v === vals[0]) };
    }
    if (best) vm.hash = best;
    snap.vm = vm;
  }
}
