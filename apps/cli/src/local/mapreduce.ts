/**
 * The MapReduce part of `mr local`: a coordinator and N workers, each a
 * separate OS process, restarted if they die; plus the --demo word count.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Supervised } from './supervisor.ts';
import type { LocalEnv, StartedSection } from './section.ts';

export interface MapReduceOptions {
  workers: number;
  port: number;
  /** The /metrics port of each worker (worker i: index i-1), scraped as job mr-worker. */
  workerMetricsPorts: number[];
  host: string;
  /** Extra input roots users may submit files from (the data dir is always one). */
  inputRoots: string[];
}

export async function startMapReduce(env: LocalEnv, o: MapReduceOptions): Promise<StartedSection> {
  const dir = join(env.data, 'mapreduce');
  const logs = join(env.data, 'logs');
  mkdirSync(dir, { recursive: true });
  let port = o.port;
  let url: string | undefined;
  let onListening: ((u: string) => void) | undefined;
  let onDeath: ((why: string) => void) | undefined;
  let stopping = false;
  // A Ctrl-C in a terminal reaches every child at once, before `mr local` stops them:
  // say "restarting" only if the section is not being stopped a moment later.
  const sayUnlessStopping = (line: string) => setTimeout(() => stopping || env.say(line), 300).unref();

  const coordinator = new Supervised({
    name: 'coordinator',
    args: () => [
      'coordinator', '--host', o.host, '--port', String(port), '--data', join(dir, 'coordinator'),
      ...[env.data, ...o.inputRoots].flatMap((r) => ['--input-root', r]),
    ],
    cwd: dir,
    env: env.childEnv,
    logFile: join(logs, 'coordinator.log'),
    onLine: (line) => {
      const m = /coordinator listening on (https?:\/\/\S+)/.exec(line);
      if (!m) return;
      url = m[1]!;
      port = Number(new URL(url).port); // a restart keeps the port (workers know it)
      onListening?.(url);
    },
    onExit: (code, signal, restarting) => {
      if (!url) onDeath?.(`the coordinator exited (code ${code}, signal ${signal}) before listening; see ${join(logs, 'coordinator.log')}`);
      else if (restarting) sayUnlessStopping(`coordinator exited (code ${code}, signal ${signal}); restarting on port ${port}`);
    },
  });
  let listeningUrl: string;
  try {
    listeningUrl = await new Promise<string>((resolve, reject) => {
      onListening = resolve;
      onDeath = reject;
    });
  } catch (err) {
    await coordinator.stop();
    throw err;
  }
  onDeath = undefined;

  const workers: Supervised[] = [];
  for (let i = 1; i <= o.workers; i++) {
    workers.push(
      new Supervised({
        name: `worker-${i}`,
        args: () => ['worker', '--coordinator', listeningUrl, '--work-dir', join(dir, `worker-${i}`), '--name', `local-${i}`, '--unreachable', '30s', '--metrics-port', String(o.workerMetricsPorts[i - 1]!), '--metrics-host', o.host],
        cwd: dir,
        env: env.childEnv,
        logFile: join(logs, `worker-${i}.log`),
        onExit: (code, signal, restarting) => {
          if (restarting) sayUnlessStopping(`worker ${i} exited (code ${code}, signal ${signal}); restarting it`);
        },
      }),
    );
  }

  return {
    name: 'mapreduce',
    urls: [
      { label: 'coordinator', url: listeningUrl },
      { label: 'metrics', url: `${listeningUrl}/metrics` },
      { label: 'worker metrics', url: o.workerMetricsPorts.map((p) => `http://${o.host}:${p}/metrics`).join(' ') },
    ],
    hints: [
      `coordinator pid ${coordinator.pid}`,
      `workers: ${o.workers} (pids ${workers.map((w) => w.pid).join(', ')}); logs in ${logs}`,
      `npx mr status --coordinator ${listeningUrl}`,
      `npx mr submit --coordinator ${listeningUrl} --app wc --output ./out --wait FILE...`,
    ],
    demo: () => runDemo(env, listeningUrl),
    halt: () => {
      stopping = true;
      coordinator.noRestart();
      for (const w of workers) w.noRestart();
    },
    stop: async () => {
      stopping = true;
      coordinator.noRestart();
      await Promise.all(workers.map((w) => w.stop()));
      await coordinator.stop();
    },
  };
}

async function runDemo(env: LocalEnv, url: string): Promise<boolean> {
  const { writeDemoCorpus } = await import('./demo-corpus.ts');
  const { Api, ApiError } = await import('../http.ts');
  const { watchJob, describeProgress } = await import('../job-watch.ts');
  const { ROUTES } = await import('@mr/mapreduce-protocol/routes');
  const inputs = writeDemoCorpus(join(env.data, 'demo', 'corpus'));
  const output = join(env.data, 'demo', `wc-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const api = new Api(url, env.childEnv['MR_TOKEN']);
  try {
    const created = await api.post<{ id: string }>(ROUTES.jobs, { app: 'wc', inputs, reduces: 10, output, name: 'demo word count' });
    env.say(`demo: word count over ${inputs.length} generated books (${join(env.data, 'demo', 'corpus')}), job ${created.id}`);
    let last = '';
    const started = Date.now();
    const job = await watchJob(api, created.id, (j) => {
      const key = `${j.state} ${j.tasks.map.done} ${j.tasks.reduce.done}`;
      if (key !== last) env.say(`demo: ${describeProgress(j)}`);
      last = key;
    });
    if (job.state !== 'succeeded') {
      env.say(`demo: job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`);
      return false;
    }
    env.say(`demo: done in ${((Date.now() - started) / 1000).toFixed(1)} s; output in ${job.output} (${job.outputFiles.length} files mr-out-*)`);
    const counts: [string, number][] = [];
    for (const f of readdirSync(job.output).filter((n) => n.startsWith('mr-out-'))) {
      for (const line of readFileSync(join(job.output, f), 'utf8').split('\n')) {
        const sp = line.lastIndexOf(' ');
        if (sp > 0) counts.push([line.slice(0, sp), Number(line.slice(sp + 1))]);
      }
    }
    counts.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    env.say(`demo: top words: ${counts.slice(0, 8).map(([w, n]) => `${w} ${n}`).join(', ')}`);
    return true;
  } catch (err) {
    if (err instanceof ApiError) {
      env.say(`demo: ${err.message}`);
      return false;
    }
    throw err;
  } finally {
    await api.close();
  }
}
