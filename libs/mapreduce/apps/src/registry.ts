/**
 * The app registry: built-in apps plus user apps loaded from a plugin
 * directory. A plugin is an ES module (.js, .mjs, or .ts when run under tsx)
 * whose default export, or export named `app`, is an MrApp (or an array of them).
 */
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MrApp } from './types.ts';
import { ERR_BAD_PLUGIN } from './errors.ts';
import { wc } from './apps/wc.ts';
import { indexer } from './apps/indexer.ts';
import { grep } from './apps/grep.ts';
import { sort } from './apps/sort.ts';
import { bad } from './apps/bad.ts';
import { crash, earlyExit, jobcount, mtiming, nocrash, rtiming } from './apps/lab.ts';

/** Environment variable naming the plugin directory (services and the CLI read it). */
export const PLUGIN_DIR_ENV = 'MR_PLUGIN_DIR';

const builtins: readonly MrApp[] = [wc, indexer, grep, sort, crash, nocrash, jobcount, earlyExit, mtiming, rtiming, bad];
const apps = new Map<string, MrApp>(builtins.map((a) => [a.name, a]));

/** The app named `name`, built in or registered, or undefined. */
export function getApp(name: string): MrApp | undefined {
  return apps.get(name);
}

/** Every known app, sorted by name. */
export function listApps(): { name: string; description: string }[] {
  return [...apps.values()].map((a) => ({ name: a.name, description: a.description })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const NAME = /^[a-z][a-z0-9_-]{0,63}$/i;

/** Checks that `x` is usable as an MrApp; returns what is wrong, or undefined. */
export function appProblem(x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const a = x as Record<string, unknown>;
  if (typeof a['name'] !== 'string' || !NAME.test(a['name'])) return 'name must be 1-64 letters, digits, _ or - (starting with a letter)';
  if (typeof a['map'] !== 'function') return `app ${a['name']}: map is not a function`;
  if (typeof a['reduce'] !== 'function') return `app ${a['name']}: reduce is not a function`;
  if (a['input'] !== undefined && a['input'] !== 'whole-file' && a['input'] !== 'lines') return `app ${a['name']}: input must be 'whole-file' or 'lines'`;
  if (a['splittable'] !== undefined && typeof a['splittable'] !== 'boolean') return `app ${a['name']}: splittable must be a boolean`;
  for (const f of ['combine', 'validateOptions', 'partition']) {
    if (a[f] !== undefined && typeof a[f] !== 'function') return `app ${a['name']}: ${f} is not a function`;
  }
  return undefined;
}

/** Adds an app to the registry. A name already taken (built in or loaded) is refused. */
export function registerApp(app: MrApp, source = 'registerApp'): void {
  const problem = appProblem(app);
  if (problem) throw ERR_BAD_PLUGIN(source, problem);
  if (apps.has(app.name)) throw ERR_BAD_PLUGIN(source, `an app named "${app.name}" already exists`);
  apps.set(app.name, { ...app, description: typeof app.description === 'string' ? app.description : '(plugin)' });
}

const PLUGIN_FILE = /\.(m?js|ts)$/;

/**
 * Imports every module in `dir` (.js, .mjs, .ts; not .d.ts or .test.*) and
 * registers the apps they export. Returns the names registered, in file order.
 * A module that exports no valid app, or an app whose name is taken, is an error.
 */
export async function loadPluginApps(dir: string): Promise<string[]> {
  const root = resolve(dir);
  let names: string[];
  try {
    names = (await readdir(root)).filter((n) => PLUGIN_FILE.test(n) && !n.endsWith('.d.ts') && !/\.test\.[a-z]+$/.test(n)).sort();
  } catch (err) {
    throw ERR_BAD_PLUGIN(root, (err as Error).message);
  }
  const loaded: string[] = [];
  for (const n of names) {
    const file = join(root, n);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      throw ERR_BAD_PLUGIN(file, `cannot import: ${(err as Error).message}`);
    }
    const exported = mod['default'] ?? mod['app'];
    if (exported === undefined) throw ERR_BAD_PLUGIN(file, 'exports no app (default export or `app`)');
    for (const app of Array.isArray(exported) ? exported : [exported]) {
      registerApp(app as MrApp, file);
      loaded.push((app as MrApp).name);
    }
  }
  return loaded;
}
