// The shapes the dashboard's API sends (see ../cluster.ts, ../app.ts): only what the views read.
export interface Phase { total: number; pending: number; running: number; done: number }
export interface Job {
  id: string; name?: string; app: string; state: string; reduces: number; inputs: number; output: string;
  submittedAt: string; startedAt?: string; finishedAt?: string;
  tasks: { map: Phase; reduce: Phase };
  attempts: { started: number; reissued: number; failed: number };
  counters: Record<string, number>; outputFiles: string[]; error?: string;
}
export interface Worker { id: string; name: string; pid: number; host: string; slots: number; registeredAt: string; lastContactAt: string; tasks: { jobId: string; taskId: string; attempt: number }[] }
export interface WorkerHistory { id: string; name: string; firstSeenAt: number; lastSeenAt: number; goneAt?: number; tasksSeen: number; lastTask?: string }
export interface VmStatus {
  vmId: string; nodeId: string; role: string; live: boolean; epoch: number; icount: number;
  log: { sent: number; acked: number; unackedBytes: number; bytesTotal: number };
  outputs: { held: number; released: number; suppressed: number };
  peer: { state: string; url?: string; silentTicks: number; icount: number; lagInstructions: number };
  hash: { icount: number; value: string }; reason?: string;
}
export interface NodeView { url: string; up: boolean; status?: VmStatus }
export interface Stage { name: string; service: string; startMs: number; durationMs: number; error: boolean }
export interface FailoverView { at: number; epoch?: number; fromNode?: string; toNode?: string; unprotectedMs?: number; protectedAgainAt?: number; traceId?: string; durationMs?: number; stages: Stage[] }
export interface Monitor { target: string; job: string; name: string; labels: Record<string, string>; value: number }
export interface Snapshot {
  at: number;
  coordinator: { url?: string; up: boolean; error?: string };
  jobs: Job[]; jobsTotal: number; workers: Worker[]; workerHistory: WorkerHistory[];
  vm: { vmId: string; nodes: NodeView[]; storage?: { url: string; up: boolean }; primary?: string; backup?: string; protected: boolean; hash?: { icount: number; values: Record<string, string>; agree: boolean }; failovers: FailoverView[] };
  events: { at: number; kind: string; text: string }[];
  monitors: Monitor[];
  targets: { name: string; job: string; url: string; up: boolean; lastScrapeAt?: number; error?: string }[];
  traces: { traces: number; spans: number; bytes: number; dropped: number };
  auth: boolean;
}
export interface SeriesDef { id: string; label: string; unit: string }
export interface Series { defs: SeriesDef[]; times: number[]; values: Record<string, (number | null)[]>; intervalMs: number }
export interface Span {
  traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; service: string;
  instance?: string; startUs: number; endUs: number; attributes: Record<string, string | number | boolean>; events: { name: string; timeUs: number }[]; status: { code: number; message?: string };
}
export interface TraceSummary { traceId: string; name: string; rootService: string; services: string[]; spans: number; startUs: number; durationMs: number; errors: number }
