/**
 * The built UI (dist/ui, made by build.mjs with esbuild): read once at start
 * and served from memory. Nothing is fetched from elsewhere: the page works
 * offline.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('../dist/ui/', import.meta.url));

/** Headers of every page and API answer: the page may load only its own scripts and styles, and talk only to its origin. */
export const securityHeaders: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

export interface Assets {
  index: string;
  login: string;
  files: Map<string, { type: string; body: Buffer }>;
}

export function loadAssets(dir = DEFAULT_ASSETS_DIR): Assets {
  if (!existsSync(join(dir, 'index.html'))) {
    throw new Error(`the dashboard's UI is not built (no ${join(dir, 'index.html')}): run npm run build -w @mr/dashboard`);
  }
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const f of readdirSync(dir)) {
    const ext = f.slice(f.lastIndexOf('.'));
    if (TYPES[ext]) files.set(f, { type: TYPES[ext], body: readFileSync(join(dir, f)) });
  }
  return { index: readFileSync(join(dir, 'index.html'), 'utf8'), login: readFileSync(join(dir, 'login.html'), 'utf8'), files };
}
