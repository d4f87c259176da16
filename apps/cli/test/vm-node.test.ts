/** `mr vm node`: address and arbiter options, refused before anything listens or connects. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mr } from './helpers/run-main.ts';

const BASE = ['vm', 'node', '--id', 'a', '--role', 'primary', '--port', '0', '--storage', 'http://127.0.0.1:9'];
const TOKENS = { MR_TOKEN: 'client', MR_PEER_TOKEN: 'peer' };

test('a wildcard --host needs --advertise (the URL peers and clients are sent to)', async () => {
  for (const host of ['0.0.0.0', '::']) {
    const r = await mr(TOKENS, ...BASE, '--host', host);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /give --advertise URL/);
  }
  const bad = await mr(TOKENS, ...BASE, '--host', '0.0.0.0', '--advertise', 'ftp://x');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--advertise must be a base URL/);
});
