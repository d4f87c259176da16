/**
 * Arbitration on etcd (apps/vm-node/src/node/arbiter.ts) against a real
 * three-member cluster: test-and-set is an etcd transaction that compares the
 * epoch key's revision, so of many claimants racing for one epoch exactly one
 * wins, also with a member killed; the winner fences the storage node's disk,
 * so the loser's disk writes are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdArbiter, StorageClient, startStorage } from '@mr/vm-node';
import { EtcdCluster, needEtcd } from '../src/etcd.ts';

test('etcd test-and-set: of six racing claimants exactly one wins each epoch, with a member killed too; the winner fences the disk', async (t) => {
  if (!needEtcd(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'mr-etcd-arbiter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await startStorage({ port: 0, dataDir: join(dir, 'storage'), logLevel: false });
  t.after(() => storage.close());
  const etcd = await EtcdCluster.start(t, { members: 3 });
  const endpoints = etcd.members.map((m) => m.client);
  const vmId = `vm-${process.pid}`;
  const nodes = ['a', 'b', 'c', 'd', 'e', 'f'].map((nodeId) => {
    const disk = new StorageClient({ url: storage.url, vmId, nodeId });
    const arbiter = new EtcdArbiter({ vmId, nodeId, storage: disk, endpoints, callTimeoutMs: 3000 });
    t.after(async () => {
      await arbiter.close();
      await disk.close();
    });
    return { nodeId, disk, arbiter };
  });

  const race = async (epoch: number) => {
    const answers = await Promise.all(nodes.map((n) => n.arbiter.tas(epoch)));
    const winners = nodes.filter((_, i) => answers[i]!.won).map((n) => n.nodeId);
    assert.equal(winners.length, 1, `epoch ${epoch}: winners ${winners.join(', ')}`);
    for (const a of answers) assert.deepEqual({ epoch: a.epoch, owner: a.owner }, { epoch, owner: winners[0] });
    return winners[0]!;
  };

  assert.deepEqual(await nodes[0]!.arbiter.flag(), { epoch: 0, owner: '' });
  const w1 = await race(1);
  const n1 = nodes.find((n) => n.nodeId === w1)!;
  assert.deepEqual(await n1.arbiter.tas(1), { won: true, epoch: 1, owner: w1 }, "the winner's retry is won again");
  assert.deepEqual(await n1.disk.flag(), { epoch: 1, owner: w1 }, 'the disk is fenced at the won epoch');
  assert.deepEqual(await n1.disk.write(0, new Uint8Array(512).fill(1), 1), { refused: false });

  // One member gone: a quorum of two still decides, and the claimants' clients go to the others.
  etcd.kill(0);
  const w2 = await race(2);
  assert.deepEqual(await nodes[5]!.arbiter.flag(), { epoch: 2, owner: w2 });
  // The epoch-1 holder is fenced at the disk now (unless it won again), and loses any claim of an old epoch.
  if (w2 !== w1) {
    const w = await n1.disk.write(0, new Uint8Array(512).fill(2), 1);
    assert.equal(w.refused, true, 'a write of the deposed epoch is refused');
  }
  assert.equal((await n1.arbiter.tas(1)).won, false);
  // Epochs advance one at a time, as at the storage node: a claim that skips one is refused.
  await assert.rejects(nodes[0]!.arbiter.tas(9), { code: 'FT_ERR_EPOCH_GAP' });
});
