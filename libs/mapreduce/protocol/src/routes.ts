/**
 * Paths of the job API and worker protocol. A module of its own with no
 * schema library behind it, so that clients (the CLI, workers) start fast.
 */
export const ROUTES = {
  jobs: '/v1/jobs',
  job: (id: string) => `/v1/jobs/${encodeURIComponent(id)}`,
  jobEvents: (id: string) => `/v1/jobs/${encodeURIComponent(id)}/events`,
  jobTasks: (id: string) => `/v1/jobs/${encodeURIComponent(id)}/tasks`,
  workers: '/v1/workers',
  poll: (w: string) => `/v1/workers/${encodeURIComponent(w)}/poll`,
  complete: (w: string) => `/v1/workers/${encodeURIComponent(w)}/complete`,
  completeBatch: (w: string) => `/v1/workers/${encodeURIComponent(w)}/complete-batch`,
  fail: (w: string) => `/v1/workers/${encodeURIComponent(w)}/fail`,
  heartbeat: (w: string) => `/v1/workers/${encodeURIComponent(w)}/heartbeat`,
  fetchFailure: (w: string) => `/v1/workers/${encodeURIComponent(w)}/fetch-failure`,
  intermediates: (w: string) => `/v1/workers/${encodeURIComponent(w)}/intermediates`,
  /** On a worker's intermediate server (worker-served shuffle). */
  intermediate: (jobId: string, map: number, attempt: number, partition: number) => `/v1/intermediates/${encodeURIComponent(jobId)}/${map}/${attempt}/${partition}`,
} as const;

/**
 * Header every later request of a worker (poll, complete, fail, heartbeat)
 * carries: the secret its registration returned. Another worker's secret, or
 * none, is refused (403); an id the coordinator does not know is 404.
 */
export const WORKER_SECRET_HEADER = 'x-mr-worker-secret';
