/** `mr vm storage`: the VM and node-id registration and the credential rules, refused before anything listens. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mr } from './helpers/run-main.ts';
import { parseVmNodes } from '../src/commands/vm.ts';

test('mr vm storage --help documents --vm and the peer credential', async () => {
  const r = await mr({}, 'vm', 'storage', '--help');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--vm VM=NODE,NODE/);
  assert.match(r.stdout, /MR_PEER_TOKEN/);
});

test('--vm VM=NODE,...: parsed, repeatable, bad specs refused', () => {
  assert.equal(parseVmNodes([]), undefined);
  assert.deepEqual([...parseVmNodes(['vm1=a,b,a', 'vm2=c'])!], [['vm1', ['a', 'b']], ['vm2', ['c']]]);
  for (const bad of ['vm1', 'vm1=', '=a', '../x=a', 'vm1=a,,b', 'vm1=a b']) assert.throws(() => parseVmNodes([bad]), /--vm expects VM=NODE,NODE/, bad);
  assert.throws(() => parseVmNodes(['vm1=a', 'vm1=b']), /given twice/);
});

test('with a token, the storage node needs MR_PEER_TOKEN (not equal to MR_TOKEN) and its VMs configured', async () => {
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ MR_TOKEN: 'client' }, ['--vm', 'vm1=a,b'], /MR_PEER_TOKEN is not/],
    [{ MR_TOKEN: 'same', MR_PEER_TOKEN: 'same' }, ['--vm', 'vm1=a,b'], /must differ from MR_TOKEN/],
    [{ MR_TOKEN: 'client', MR_PEER_TOKEN: 'peer' }, [], /--vm vm1=a,b/],
    [{ MR_PEER_TOKEN: 'peer' }, [], /--vm vm1=a,b/],
  ];
  for (const [env, extra, re] of cases) {
    const r = await mr(env, 'vm', 'storage', '--port', '0', '--data', '/nonexistent/never-created', ...extra);
    assert.equal(r.code, 2, `${JSON.stringify(env)} ${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const bad = await mr({}, 'vm', 'storage', '--port', '0', '--data', '/nonexistent/never-created', '--vm', 'vm1');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--vm expects VM=NODE,NODE/);
});
