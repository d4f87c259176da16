import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getApp, runMapTask, runReduceTask, type TaskContext } from '../src/index.ts';
import { seqOutput, tempDir, writeInputs } from './helpers.ts';

/** A live process that is not us, and the pid of one that has exited. */
async function otherPids(): Promise<{ live: number; dead: number; stop: () => void }> {
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  const quick = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => quick.on('exit', r));
  return { live: sleeper.pid!, dead: quick.pid!, stop: () => sleeper.kill() };
}

// The lab apps sleep (1-5 s); their tests run side by side, each in its own directory.
describe('lab test apps', { concurrency: true }, () => {
  test('nocrash: the four lab lines (a: names, b: name lengths in bytes, c: content lengths in bytes, d: xyzzy)', async () => {
    const dir = await tempDir();
    await writeInputs(dir, [['pg-été.txt', 'héllo'], ['pg-b.txt', Buffer.from([0xff, 0xfe, 0x41])], ['pg-long-name.txt', 'x'.repeat(1234)]]);
    const names = ['./pg-été.txt', 'pg-b.txt', 'pg-long-name.txt'];
    const out = (await seqOutput(getApp('nocrash')!, dir, names)).toString('utf8');
    assert.equal(out, [
      'a ./pg-été.txt pg-b.txt pg-long-name.txt',
      'b 14 16 8', // byte lengths, sorted as strings (Go sort.Strings)
      'c 1234 3 6',
      'd xyzzy xyzzy xyzzy',
      '',
    ].join('\n'));
  });

  test('crash: its map goes on with the nocrash pairs, stalls, or exits the process with status 1', async () => {
    // A child runs crash's map again and again (a stall longer than 50 ms is
    // left behind and the next call starts) until one call exits the process.
    // P(no exit in 300 calls) = 0.67^300: never.
    const script = `
      import { getApp } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
      const app = getApp('crash');
      for (let i = 0; i < 300; i++) {
        const pairs = [];
        const r = await Promise.race([
          app.map('in.txt', Buffer.from('abc'), (k, v) => pairs.push(k + '=' + v), { options: {}, cwd: process.cwd() }).then(() => 'ok ' + pairs.join(',')),
          new Promise((res) => setTimeout(() => res('stalled'), 50)),
        ]);
        process.stdout.write(r + '\\n');
      }
      process.stdout.write('survived\\n');
      process.exit(0);
    `;
    const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--conditions=@mr/source', '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, out }));
    });
    assert.equal(r.code, 1, 'the process exited with status 1');
    for (const line of r.out.split('\n').filter(Boolean)) assert.ok(line === 'stalled' || line === 'ok a=in.txt,b=6,c=3,d=xyzzy', line);
  });

  test('early_exit: `file 1` per input; reduce sleeps 3 s for keys with sherlock or tom', async () => {
    const dir = await tempDir();
    const names = await writeInputs(dir, [['pg-grimm.txt', 'x'], ['pg-tom_sawyer.txt', 'y']]);
    const app = getApp('early_exit')!;
    assert.equal((await seqOutput(app, dir, names.slice(0, 1))).toString(), 'pg-grimm.txt 1\n');
    const ctx: TaskContext = { options: {}, cwd: dir, count: () => undefined };
    const t0 = performance.now();
    assert.equal(await app.reduce('../pg-tom_sawyer.txt', ['1'], ctx), '1');
    assert.ok(performance.now() - t0 >= 2900, 'the tom key sleeps 3 s');
  });

  test('jobcount: every map leaves mr-worker-jobcount-<pid>-<thread>-<n>; reduce counts them (overlapping maps included)', async () => {
    const dir = await tempDir();
    const names = await writeInputs(dir, [['a', '1'], ['b', '2']]);
    const app = getApp('jobcount')!;
    const maps = await Promise.all(names.map((input, m) => runMapTask({ app, options: {}, input, mapIndex: m, reduces: 1, outputDir: join(dir, 'w'), cwd: dir })));
    const side = (await readdir(dir)).filter((n) => n.startsWith('mr-worker-jobcount'));
    assert.equal(side.length, 2);
    for (const n of side) assert.match(n, new RegExp(`^mr-worker-jobcount-${process.pid}-\\d+-\\d+$`));
    const { file } = await runReduceTask({ app, options: {}, reduceIndex: 0, inputs: maps.map((m) => m.files[0]!), outputDir: join(dir, 'o'), cwd: dir });
    assert.equal(await (await import('node:fs/promises')).readFile(file, 'utf8'), 'a 2\n');
  });

  test('mtiming: counts live map workers through mr-worker-map-<pid> files, records its start time', async () => {
    const dir = await tempDir();
    const { live, dead, stop } = await otherPids();
    try {
      await writeFile(join(dir, `mr-worker-map-${live}`), 'x');
      await writeFile(join(dir, `mr-worker-map-${dead}`), 'x');
      await writeFile(join(dir, `mr-worker-reduce-${live}`), 'x');
      const pairs: [string, string][] = [];
      const before = Date.now() / 1000;
      await getApp('mtiming')!.map('f', Buffer.from(''), (k, v) => pairs.push([k, v]), { options: {}, cwd: dir, count: () => undefined });
      assert.equal(pairs.length, 2);
      assert.equal(pairs[0]![0], `times-${process.pid}`);
      assert.match(pairs[0]![1], /^\d+\.\d$/);
      assert.ok(Math.abs(Number(pairs[0]![1]) - before) < 1);
      assert.deepEqual(pairs[1], [`parallel-${process.pid}`, '2'], 'itself and the live one, not the dead one or the reduce file');
      assert.equal(existsSync(join(dir, `mr-worker-map-${process.pid}`)), false, 'its own file is removed');
      assert.equal(await getApp('mtiming')!.reduce('times-1', ['3.5', '10.0', '2.25'], { options: {}, cwd: dir, count: () => undefined }), '10.0 2.25 3.5');
    } finally {
      stop();
    }
  });

  test('rtiming: map emits a..j; reduce returns the number of live reduce workers', async () => {
    const dir = await tempDir();
    const { live, stop } = await otherPids();
    try {
      const keys: string[] = [];
      await getApp('rtiming')!.map('f', Buffer.from(''), (k, v) => keys.push(`${k}=${v}`), { options: {}, cwd: dir, count: () => undefined });
      assert.deepEqual(keys, 'abcdefghij'.split('').map((k) => `${k}=1`));
      assert.equal(await getApp('rtiming')!.reduce('a', ['1'], { options: {}, cwd: dir, count: () => undefined }), '1');
      await writeFile(join(dir, `mr-worker-reduce-${live}`), 'x');
      assert.equal(await getApp('rtiming')!.reduce('a', ['1'], { options: {}, cwd: dir, count: () => undefined }), '2');
      assert.deepEqual((await readdir(dir)).sort(), [`mr-worker-reduce-${live}`]);
    } finally {
      stop();
    }
  });
});
