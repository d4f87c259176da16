/**
 * mr submit --json, mr status --json and mr cancel against an in-process
 * coordinator (no workers: the job stays queued), found through MR_COORDINATOR.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCoordinator } from '@mr/coordinator';
import { mr } from './helpers/run-main.ts';

test('mr submit --json, mr status --json, mr cancel (MR_COORDINATOR as the default --coordinator)', async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mr-cli-jobs-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const input = join(dir, 'a.txt');
  writeFileSync(input, 'hello world\n');
  const app = await buildCoordinator({ dataDir: join(dir, 'data'), inputRoots: [dir], outputRoots: [dir], logLevel: false });
  t.after(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const env = { MR_COORDINATOR: url };

  const sub = await mr(env, 'submit', '--json', '--app', 'wc', '--reduces', '1', '--output', join(dir, 'out'), input);
  assert.equal(sub.code, 0, sub.stderr);
  const created = JSON.parse(sub.stdout);
  assert.deepEqual(Object.keys(created).sort(), ['id', 'state']);
  assert.equal(created.state, 'queued');

  const st = await mr(env, 'status', '--json', created.id);
  assert.equal(st.code, 0);
  assert.equal(JSON.parse(st.stdout).id, created.id);

  const c = await mr(env, 'cancel', created.id);
  assert.deepEqual([c.code, c.stdout], [0, `job ${created.id} cancelled\n`]);
  const again = await mr(env, 'cancel', '--json', created.id);
  assert.equal(again.code, 0, 'cancelling a cancelled job again is no error');
  assert.equal(JSON.parse(again.stdout).state, 'cancelled');
  const unknown = await mr(env, 'cancel', 'nope');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no job nope/);
  // --coordinator wins over MR_COORDINATOR.
  const flag = await mr({ MR_COORDINATOR: 'http://127.0.0.1:9' }, 'status', '--json', '--coordinator', url, created.id);
  assert.equal(JSON.parse(flag.stdout).state, 'cancelled');
});

test('mr cancel: usage errors exit 2', async () => {
  const none = await mr({}, 'cancel', 'j1');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--coordinator URL is required \(or set MR_COORDINATOR\)/);
  const two = await mr({ MR_COORDINATOR: 'http://127.0.0.1:9' }, 'cancel', 'a', 'b');
  assert.equal(two.code, 2);
  assert.match(two.stderr, /exactly one JOB_ID/);
});
