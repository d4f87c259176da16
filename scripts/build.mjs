#!/usr/bin/env node
// Compiles every workspace package's src/ (TypeScript) into dist/ (ES modules
// with source maps), so that bins, services and worker threads run plain
// JavaScript with no TypeScript loader at run time. Each file is transpiled on
// its own (isolatedModules; type checking is `npm run typecheck`'s job), with
// relative `.ts` imports rewritten to `.js`. dist/ mirrors src/ file for file,
// so `import.meta.url`-relative paths (../../bin/mr.js, ./asm/kv.s) hold in both;
// other files under src/ (assembly, .mjs) are copied.
//
// Incremental: a file is redone only when its source is newer than its output,
// and outputs whose source is gone are deleted (a removed command must not live
// on in dist/). `--clean` rebuilds everything; `--check` builds nothing and
// exits 1, naming the stale files, if dist/ is not up to date.
//
// Run by `npm ci`/`npm install` (the root `prepare` script), by `npm test`
// before anything else, and by the test scripts of projects that spawn `mr`.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = new Set(process.argv.slice(2));
const clean = args.has('--clean');
const checkOnly = args.has('--check');
const quiet = args.has('--quiet');

/** Workspace packages that have a src/ directory (apps/*, libs/*\/*). */
function packages() {
  const out = [];
  for (const top of ['apps', 'libs']) {
    for (const a of readdirSync(join(root, top))) {
      const d = join(root, top, a);
      if (existsSync(join(d, 'package.json'))) out.push(d);
      else if (statSync(d).isDirectory()) for (const b of readdirSync(d)) if (existsSync(join(d, b, 'package.json'))) out.push(join(d, b));
    }
  }
  return out.filter((d) => existsSync(join(d, 'src')));
}

function walk(dir, files = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, files);
    else if (e.isFile()) files.push(p);
  }
  return files;
}

const isSource = (f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !/\.test\.ts$/.test(f);
const mtime = (f) => { try { return statSync(f).mtimeMs; } catch { return -1; } };

/** Every output the current sources call for: dist file -> { src, kind }. */
const wanted = new Map();
const distOf = new Map();
/** Per package, subdirectories of src/ that the package builds itself (package.json "buildOwn", e.g. the dashboard's browser UI into dist/ui): neither compiled here nor cleaned. */
const ownOf = new Map();
const own = (pkg, rel) => ownOf.get(pkg).some((d) => rel === d || rel.startsWith(d + '/'));
for (const pkg of packages()) {
  const src = join(pkg, 'src');
  const dist = join(pkg, 'dist');
  distOf.set(pkg, dist);
  ownOf.set(pkg, JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).buildOwn ?? []);
  for (const f of walk(src)) {
    const rel = relative(src, f);
    if (own(pkg, rel)) continue;
    if (isSource(f)) {
      const out = join(dist, rel.slice(0, -3) + '.js');
      wanted.set(out, { src: f, pkg, kind: 'ts' });
      wanted.set(out + '.map', { src: f, pkg, kind: 'map' });
    } else if (!f.endsWith('.ts')) {
      wanted.set(join(dist, rel), { src: f, pkg, kind: 'copy' });
    }
  }
}

/** Packages with a source newer than its output, or an output whose source is gone. */
const stale = new Set();
// This script's own changes (compile options) make everything stale too.
const self = mtime(new URL(import.meta.url).pathname);
for (const [out, w] of wanted) if (clean || mtime(out) < Math.max(mtime(w.src), self)) stale.add(w.pkg);
const orphans = [];
for (const [pkg, dist] of distOf) if (existsSync(dist)) for (const f of walk(dist)) if (!wanted.has(f) && !f.endsWith('.tmp') && !own(pkg, relative(dist, f))) { orphans.push(f); stale.add(pkg); }

if (checkOnly) {
  if (stale.size) {
    const names = [...stale].map((p) => relative(root, p));
    process.stderr.write(`dist/ is out of date in ${names.join(', ')}; run: npm run build\n`);
    process.exit(1);
  }
  process.exit(0);
}

const started = performance.now();
for (const f of orphans) rmSync(f, { force: true });
// Each package's modules are compiled one for one: every import stays an import
// (external), relative `.ts` specifiers become `.js`. Bundling mode is used only
// for its resolve hook, which sees every static and literal dynamic import.
const oneForOne = {
  name: 'one-for-one',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (a) => {
      if (a.kind === 'entry-point') return undefined;
      return { path: /^\.\.?\//.test(a.path) ? a.path.replace(/\.ts$/, '.js') : a.path, external: true };
    });
  },
};
if (stale.size) {
  const esbuild = await import('esbuild');
  const results = await Promise.all([...stale].map(async (pkg) => {
    const entries = [...wanted].filter(([, w]) => w.pkg === pkg && w.kind === 'ts').map(([, w]) => w.src);
    for (const [out, w] of wanted) {
      if (w.pkg !== pkg || w.kind !== 'copy') continue;
      mkdirSync(dirname(out), { recursive: true });
      copyFileSync(w.src, `${out}.${process.pid}.tmp`);
      renameSync(`${out}.${process.pid}.tmp`, out);
    }
    return esbuild.build({
      entryPoints: entries, outbase: join(pkg, 'src'), outdir: distOf.get(pkg),
      bundle: true, plugins: [oneForOne], format: 'esm', platform: 'node', target: 'node20',
      sourcemap: 'linked', logLevel: 'silent', write: false,
    }).then((r) => {
      // Each file written whole (temp + rename): two builds at once (projects
      // tested in parallel) or a process starting meanwhile never see half a file.
      for (const f of r.outputFiles) {
        mkdirSync(dirname(f.path), { recursive: true });
        const tmp = `${f.path}.${process.pid}.tmp`;
        writeFileSync(tmp, f.contents);
        renameSync(tmp, f.path);
      }
      return 0;
    }, (err) => {
      for (const e of err.errors ?? [err]) process.stderr.write(`${relative(root, pkg)}: ${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text ?? e.message}\n`);
      return 1;
    });
  }));
  if (results.some((r) => r)) {
    process.stderr.write('build: failed\n');
    process.exit(1);
  }
}
if (!quiet && stale.size) {
  const ms = Math.round(performance.now() - started);
  console.log(`build: ${stale.size} package(s) compiled, ${orphans.length} stale file(s) removed, in ${ms} ms`);
}
