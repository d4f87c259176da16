/** `--storage` / `--disk` of `mr vm node`: which arbiter, validated once at start. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStorageOptions } from '../src/node/arbiter-config.ts';

test('parseStorageOptions: the storage node arbitrates, or etcd does and --disk names the disk', () => {
  assert.deepEqual(parseStorageOptions('http://10.0.0.5:7080/', undefined), { storageUrl: 'http://10.0.0.5:7080', arbiter: { kind: 'storage' } });
  assert.deepEqual(parseStorageOptions('etcd://10.0.0.1:2379,etcd-2:2379,[::1]:2379', 'http://10.0.0.5:7080'), {
    storageUrl: 'http://10.0.0.5:7080',
    arbiter: { kind: 'etcd', endpoints: ['http://10.0.0.1:2379', 'http://etcd-2:2379', 'http://[::1]:2379'] },
  });
  const bad: [string, string | undefined, RegExp][] = [
    ['http://10.0.0.5:7080', 'http://10.0.0.6:7080', /--disk is only for --storage etcd/],
    ['etcd://10.0.0.1:2379', undefined, /give --disk/],
    ['etcd://10.0.0.1', 'http://s:1', /bad endpoint "10.0.0.1"/],
    ['etcd://10.0.0.1:0', 'http://s:1', /bad endpoint/],
    ['etcd://a:1,a:1', 'http://s:1', /given twice/],
    ['etcd://', 'http://s:1', /bad endpoint ""/],
    ['etcd://a:1', 'ftp://s', /--disk must be a base URL/],
    ['storage:7080', undefined, /--storage must be a base URL/],
    [`etcd://${Array.from({ length: 17 }, (_, i) => `h${i}:2379`).join(',')}`, 'http://s:1', /at most 16/],
  ];
  for (const [storage, disk, re] of bad) assert.throws(() => parseStorageOptions(storage, disk), (err: { code?: string; message: string }) => err.code === 'FT_ERR_ARBITER_CONFIG' && re.test(err.message), `${storage} ${disk}`);
});
