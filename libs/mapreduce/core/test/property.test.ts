import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { partitionFile, reduceInputs, Scheduler, type SchedulerInput } from '../src/index.ts';
import { testJobId } from './harness.ts';

test('reduceInputs picks each winning map file of the partition, like a dumb name search', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.tuple(fc.boolean(), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 })), { minLength: 1, maxLength: 6 }),
      (reduces, maps) => {
        // Each map reports either one file per partition (index = partition) or only its non-empty partitions by name.
        const lists = maps.map(([full, present], m) =>
          full
            ? Array.from({ length: reduces }, (_, r) => `/w/m${m}-a1/mr-${m}-${r}`)
            : Array.from({ length: reduces }, (_, r) => r).filter((r) => present[r]).map((r) => `/w/m${m}-a1/mr-${m}-${r}`),
        );
        for (let r = 0; r < reduces; r++) {
          const dumb: string[] = [];
          for (let m = 0; m < lists.length; m++) for (const f of lists[m]!) if (f.endsWith(`/mr-${m}-${r}`)) dumb.push(f);
          // A partial list that happens to have `reduces` entries is a full list by the contract.
          assert.deepEqual(reduceInputs(lists, r, reduces), dumb);
          for (let m = 0; m < lists.length; m++) assert.equal(partitionFile(lists[m]!, m, r, reduces), dumb.find((f) => f.includes(`/m${m}-`)));
        }
      },
    ),
  );
});

const op = fc.oneof(
  fc.record({ k: fc.constant('poll' as const), w: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ k: fc.constant('complete' as const), w: fc.integer({ min: 1, max: 4 }), pick: fc.nat(), stale: fc.boolean() }),
  fc.record({ k: fc.constant('fail' as const), w: fc.integer({ min: 1, max: 4 }), pick: fc.nat(), retryable: fc.boolean() }),
  fc.record({ k: fc.constant('tick' as const), n: fc.integer({ min: 1, max: 15 }) }),
  fc.record({ k: fc.constant('heartbeat' as const), w: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ k: fc.constant('submit' as const), maps: fc.integer({ min: 1, max: 4 }), reduces: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ k: fc.constant('cancel' as const), pick: fc.nat() }),
  fc.record({ k: fc.constant('gone' as const), pick: fc.nat() }),
);

test('under any sequence of inputs, the task counts agree with a recount of the leases and a task is never leased twice', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
      const core = new Scheduler({ leaseTicks: 10, heartbeatTimeoutTicks: 5, heartbeatIntervalTicks: 1, pollTimeoutTicks: 7, maxAttempts: 4 });
      let req = 0;
      let jobs = 0;
      const held = new Map<string, { jobId: string; taskId: string; attempt: number; files: string[] }[]>();
      // Worker slot n registers as needed (a lost worker registers again) with credential c<n>.
      const ids = new Map<number, string>();
      const parked: string[] = [];
      const committed = new Set<string>();
      const run = (input: SchedulerInput): void => {
        core.step(input);
        const fx = core.ready();
        const publish = [...fx.publish];
        for (const p of fx.persist) {
          if (p.type !== 'task-committed') continue;
          const k = `${p.jobId}/${p.taskId}`;
          assert.ok(!committed.has(k), `${k} committed twice`);
          committed.add(k);
        }
        for (const r of fx.replies) {
          if (r.body.kind === 'registered') ids.set(Number(r.requestId.slice(4)), r.body.workerId);
          if (r.body.kind !== 'poll') continue;
          const i = parked.indexOf(r.requestId);
          if (i >= 0) parked.splice(i, 1);
          const a = r.body.reply;
          if (a.type === 'map' || a.type === 'reduce') {
            const w = r.requestId.split(':')[0]!;
            const files = a.type === 'map' ? Array.from({ length: a.reduces }, (_, i) => `${a.outputDir}/mr-${a.index}-${i}`) : [];
            held.set(w, [...(held.get(w) ?? []), { jobId: a.jobId, taskId: a.taskId, attempt: a.attempt, files }]);
          }
        }
        core.advance();
        for (const p of publish) run({ type: 'published', jobId: p.jobId, taskId: p.taskId, attempt: p.attempt });
      };
      const wid = (n: number): string => {
        const id = ids.get(n);
        if (id === undefined || !core.workers().some((w) => w.id === id)) run({ type: 'register', requestId: `reg:${n}`, worker: { name: `w${n}`, pid: n, host: 'h', slots: 1 }, credential: `c${n}` });
        return ids.get(n)!;
      };
      const all = (): { w: string; t: { jobId: string; taskId: string; attempt: number; files: string[] } }[] => [...held].flatMap(([w, ts]) => ts.map((t) => ({ w, t })));
      for (const o of ops) {
        const id = `${++req}`;
        switch (o.k) {
          case 'poll':
            parked.push(`w${o.w}:${id}`);
            run({ type: 'poll', requestId: `w${o.w}:${id}`, workerId: wid(o.w), credential: `c${o.w}` });
            break;
          case 'complete':
          case 'fail': {
            const list = all();
            if (list.length === 0) break;
            const { w, t } = list[o.pick % list.length]!;
            const attempt = o.k === 'complete' && o.stale ? t.attempt - 1 || 99 : t.attempt;
            const n = Number(w.slice(1));
            const workerId = wid(n);
            const credential = `c${n}`;
            if (o.k === 'complete') run({ type: 'complete', requestId: id, workerId, credential, jobId: t.jobId, taskId: t.taskId, attempt, durationMs: 1, files: t.files });
            else run({ type: 'fail', requestId: id, workerId, credential, jobId: t.jobId, taskId: t.taskId, attempt, error: 'x', retryable: o.retryable });
            break;
          }
          case 'tick':
            for (let i = 0; i < o.n; i++) run({ type: 'tick' });
            break;
          case 'heartbeat':
            run({ type: 'heartbeat', requestId: id, workerId: wid(o.w), credential: `c${o.w}`, tasks: (held.get(`w${o.w}`) ?? []).map(({ jobId, taskId, attempt }) => ({ jobId, taskId, attempt })) });
            break;
          case 'submit':
            run({ type: 'submit', requestId: id, jobId: testJobId(++jobs), job: { app: 'wc', inputs: Array.from({ length: o.maps }, (_, i) => `/in/${i}`), reduces: o.reduces, options: {} } });
            break;
          case 'cancel': {
            const ids = core.jobIds();
            if (ids.length) run({ type: 'cancel', requestId: id, jobId: ids[o.pick % ids.length]! });
            break;
          }
          case 'gone':
            if (parked.length) run({ type: 'poll-gone', requestId: parked.splice(o.pick % parked.length, 1)[0]! });
            break;
        }
        // Dumb recount: leases listed per worker vs the per-job running counts.
        const leases = core.workers().flatMap((w) => w.tasks.map((t) => `${t.jobId}/${t.taskId}`));
        assert.equal(new Set(leases).size, leases.length, 'a task is leased to two workers at once');
        let running = 0;
        for (const j of core.jobs()) {
          for (const phase of ['map', 'reduce'] as const) {
            const c = j.tasks[phase];
            assert.equal(c.pending + c.running + c.done, c.total);
            running += c.running;
            if (phase === 'reduce' && c.running + c.done > 0) assert.equal(j.tasks.map.done, j.tasks.map.total, 'reduce before every map');
            assert.equal(c.done, [...committed].filter((k) => k.startsWith(`${j.id}/${phase}-`)).length);
          }
          if (j.state !== 'running' && j.state !== 'queued') assert.equal(j.tasks.map.running + j.tasks.reduce.running, 0);
        }
        assert.equal(running, leases.length);
        assert.ok(core.parkedPolls() <= 4, 'at most one parked poll per worker');
      }
    }),
    { numRuns: 300 },
  );
});
