import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../src/main.ts';

function capture(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  return Object.assign(w, { text: () => chunks.join('') });
}

async function mr(argv: string[], env: Record<string, string> = {}) {
  const stdout = capture();
  const stderr = capture();
  const code = await main(argv, { env, stdout, stderr });
  return { code, out: stdout.text(), err: stderr.text() };
}

const dir = await mkdtemp(join(tmpdir(), 'mr-seq-cli-'));
after(() => rm(dir, { recursive: true, force: true }));

test('mr seq --app wc writes DIR/mr-out-0 with `word count` lines in byte order', async () => {
  await writeFile(join(dir, 'a.txt'), 'the cat and the hat\r\nÉté 😀 été');
  await writeFile(join(dir, 'b.txt'), Buffer.from([0x74, 0x68, 0x65, 0xff, 0x63, 0x61, 0x74]));
  const r = await mr(['seq', '--app', 'wc', '--output', join(dir, 'out'), join(dir, 'a.txt'), join(dir, 'b.txt')]);
  assert.equal(r.code, 0, r.err);
  assert.equal(await readFile(join(dir, 'out', 'mr-out-0'), 'utf8'), 'and 1\ncat 2\nhat 1\nthe 3\nÉté 1\nété 1\n');
  assert.match(r.out, /mr-out-0/);
});

test('mr seq passes options to the app and validates them', async () => {
  await writeFile(join(dir, 'g.txt'), 'one fish\ntwo fish\nred\n');
  const ok = await mr(['seq', '--app', 'grep', '--option', 'pattern=fish$', '--output', join(dir, 'g'), join(dir, 'g.txt')]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(await readFile(join(dir, 'g', 'mr-out-0'), 'utf8'), `${join(dir, 'g.txt')}:1 one fish\n${join(dir, 'g.txt')}:2 two fish\n`);
  const bad = await mr(['seq', '--app', 'grep', '--option', 'pattern=(', '--output', join(dir, 'g2'), join(dir, 'g.txt')]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /invalid or unsupported pattern/);
  const noeq = await mr(['seq', '--app', 'grep', '--option', 'pattern', '--output', join(dir, 'g2'), join(dir, 'g.txt')]);
  assert.equal(noeq.code, 2);
  assert.match(noeq.err, /key=value/);
});

test('mr seq: unknown app lists the known ones; missing file, missing flags -> exit 2', async () => {
  const unknown = await mr(['seq', '--app', 'wordcount', '--output', join(dir, 'x'), join(dir, 'a.txt')]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown app "wordcount"/);
  assert.match(unknown.err, /^ {2}wc /m);
  assert.match(unknown.err, /^ {2}indexer /m);
  const missing = await mr(['seq', '--app', 'wc', '--output', join(dir, 'x'), join(dir, 'nope.txt')]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /input file not found: .*nope\.txt/);
  const noApp = await mr(['seq', '--output', join(dir, 'x'), join(dir, 'a.txt')]);
  assert.equal(noApp.code, 2);
  assert.match(noApp.err, /--app/);
  const noFiles = await mr(['seq', '--app', 'wc', '--output', join(dir, 'x')]);
  assert.equal(noFiles.code, 2);
  const help = await mr(['seq', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /usage: mr seq --app NAME --output DIR/);
});

test('mr seq --plugins DIR (or MR_PLUGIN_DIR) runs a user app', async () => {
  const plugins = join(dir, 'plugins');
  await mkdir(plugins);
  await writeFile(join(plugins, 'lines.mjs'), `export default { name: 'linecount', description: 'lines per file',
    map(f, c, emit) { emit(f, String(c.toString().split('\\n').length - 1)); }, reduce(k, v) { return v.join(' '); } };`);
  const r = await mr(['seq', '--app', 'linecount', '--output', join(dir, 'p'), join(dir, 'g.txt')], { MR_PLUGIN_DIR: plugins });
  assert.equal(r.code, 0, r.err);
  assert.equal(await readFile(join(dir, 'p', 'mr-out-0'), 'utf8'), `${join(dir, 'g.txt')} 3\n`);
});
