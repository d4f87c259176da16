/**
 * Builds the UI into dist/ui with esbuild (a devDependency: the bundle is
 * made at build time, served as files, no CDN): src/ui/main.ts and its
 * imports (uPlot) -> app.js, the styles (uPlot's included) -> app.css, and
 * the two HTML pages. `npm run build -w @mr/dashboard` runs it; `mr
 * dashboard` runs it first when dist/ui is missing or older than src/ui.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const ui = join(pkg, 'src', 'ui');
export const DIST = join(pkg, 'dist', 'ui');

function newest(dir: string): number {
  let t = 0;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, f.name);
    t = Math.max(t, f.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export function isBuilt(): boolean {
  const out = join(DIST, 'app.js');
  return existsSync(out) && existsSync(join(DIST, 'index.html')) && statSync(out).mtimeMs >= newest(ui);
}

export async function buildUi(opts: { minify?: boolean } = {}): Promise<void> {
  const esbuild = await import('esbuild');
  // Built beside, then renamed file by file: a server reading dist/ui meanwhile (another
  // process building too, e.g. parallel tests) sees whole files, old or new.
  const tmp = `${DIST}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  mkdirSync(DIST, { recursive: true });
  await esbuild.build({
    entryPoints: { app: join(ui, 'main.ts'), login: join(ui, 'login.ts'), style: join(ui, 'style.css') },
    bundle: true,
    format: 'esm',
    target: ['es2022'],
    outdir: tmp,
    minify: opts.minify ?? true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  for (const f of ['index.html', 'login.html']) copyFileSync(join(ui, f), join(tmp, f));
  for (const f of readdirSync(tmp)) renameSync(join(tmp, f), join(DIST, f));
  rmSync(tmp, { recursive: true, force: true });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t = Date.now();
  await buildUi();
  console.log(`dashboard UI built into ${DIST} in ${Date.now() - t} ms`);
}
