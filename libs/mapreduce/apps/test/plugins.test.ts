import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasCode } from '@mr/errors';
import { getApp, listApps, loadPluginApps, runSequential } from '../src/index.ts';
import { seqOutput, tempDir, writeInputs } from './helpers.ts';

test('built-in apps are listed with descriptions', () => {
  const names = listApps().map((a) => a.name);
  for (const n of ['wc', 'indexer', 'grep', 'sort', 'crash', 'nocrash', 'jobcount', 'early_exit', 'mtiming', 'rtiming', 'bad']) assert.ok(names.includes(n), n);
  assert.ok(listApps().every((a) => a.description.length > 0));
  assert.equal(getApp('nope'), undefined);
});

test('loadPluginApps registers the apps that modules in the directory export', async () => {
  const dir = await tempDir();
  const plugins = join(dir, 'plugins');
  await mkdir(plugins);
  await writeFile(join(plugins, 'upper.mjs'), `
    export default {
      name: 'upper',
      description: 'counts upper-cased words',
      map(_f, contents, emit) { for (const w of contents.toString().split(/\\s+/)) if (w) emit(w.toUpperCase(), '1'); },
      reduce(_k, values) { return String(values.length); },
    };`);
  await writeFile(join(plugins, 'pair.js'), `
    const mk = (name) => ({ name, description: name, map(f, c, emit) { emit(name, f); }, reduce(k, v) { return v.join('+'); } });
    export const app = [mk('first_plugin'), mk('second-plugin')];`);
  await writeFile(join(plugins, 'README.md'), 'not a module');
  assert.deepEqual(await loadPluginApps(plugins), ['first_plugin', 'second-plugin', 'upper']);
  assert.ok(listApps().some((a) => a.name === 'upper' && a.description === 'counts upper-cased words'));
  const names = await writeInputs(dir, [['in', 'a b A c']]);
  assert.equal((await seqOutput(getApp('upper')!, dir, names)).toString(), 'A 2\nB 1\nC 1\n');
  assert.equal((await seqOutput(getApp('second-plugin')!, dir, names)).toString(), 'second-plugin in\n');
  // Loading again: the names are taken.
  await assert.rejects(loadPluginApps(plugins), (err) => hasCode(err, 'MR_BAD_PLUGIN') && /already exists/.test(err.message));
});

test('a plugin that is not an app, or takes a built-in name, is refused with a message', async () => {
  const dir = await tempDir();
  for (const [file, src, why] of [
    ['nomap.mjs', `export default { name: 'nomap', description: '', reduce() { return ''; } };`, /map is not a function/],
    ['empty.mjs', `export const x = 1;`, /exports no app/],
    ['wc.mjs', `export default { name: 'wc', description: '', map() {}, reduce() { return ''; } };`, /already exists/],
    ['broken.mjs', `export default {`, /cannot import/],
  ] as const) {
    const d = join(dir, file);
    await mkdir(d);
    await writeFile(join(d, file), src);
    await assert.rejects(loadPluginApps(d), (err) => hasCode(err, 'MR_BAD_PLUGIN') && why.test(err.message), file);
  }
  await assert.rejects(loadPluginApps(join(dir, 'missing')), (err) => hasCode(err, 'MR_BAD_PLUGIN'));
  assert.equal(getApp('nomap'), undefined);
  await assert.rejects(runSequential({ app: getApp('wc')!, inputs: ['missing'], outputDir: 'o', cwd: dir }), (err) => hasCode(err, 'MR_INPUT_NOT_FOUND'));
});
