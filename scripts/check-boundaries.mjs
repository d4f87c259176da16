#!/usr/bin/env node
// Enforces the project dependency rules of STYLE.md from each package.json's
// nx.tags and its @mr/* dependencies (not devDependencies: test-only fakes are fine):
//   type:app -> shell|core|protocol|util     type:shell -> core|protocol|util
//   type:core -> protocol|util               type:protocol -> util     type:util -> util
//   scope:mapreduce and scope:vmft never depend on each other.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const allowed = {
  'type:app': ['type:app', 'type:shell', 'type:core', 'type:protocol', 'type:util'],
  'type:shell': ['type:shell', 'type:core', 'type:protocol', 'type:util'],
  'type:core': ['type:core', 'type:protocol', 'type:util'],
  'type:protocol': ['type:protocol', 'type:util'],
  'type:util': ['type:util'],
  'type:testing': ['type:util', 'type:testing'],
  'type:e2e': ['type:app', 'type:shell', 'type:core', 'type:protocol', 'type:util', 'type:testing'],
};
const dirs = [];
for (const top of ['apps', 'libs']) {
  for (const a of readdirSync(join(root, top))) {
    const d = join(root, top, a);
    if (existsSync(join(d, 'package.json'))) dirs.push(d);
    else for (const b of readdirSync(d)) if (existsSync(join(d, b, 'package.json'))) dirs.push(join(d, b));
  }
}
for (const extra of ['tests', 'bench']) if (existsSync(join(root, extra, 'package.json'))) dirs.push(join(root, extra));
const pkgs = new Map();
for (const d of dirs) {
  const p = JSON.parse(readFileSync(join(d, 'package.json'), 'utf8'));
  pkgs.set(p.name, { dir: d.slice(root.length), tags: p.nx?.tags ?? [], deps: Object.keys(p.dependencies ?? {}) });
}
const problems = [];
for (const [name, p] of pkgs) {
  const type = p.tags.find((t) => t.startsWith('type:'));
  const scope = p.tags.find((t) => t.startsWith('scope:'));
  if (!type || !scope) { problems.push(`${name}: needs a type: and a scope: tag`); continue; }
  for (const dep of p.deps) {
    const q = pkgs.get(dep);
    if (!q) continue;
    const qt = q.tags.find((t) => t.startsWith('type:'));
    const qs = q.tags.find((t) => t.startsWith('scope:'));
    if (!allowed[type]?.includes(qt)) problems.push(`${name} (${type}) may not depend on ${dep} (${qt})`);
    if ((scope === 'scope:mapreduce' && qs === 'scope:vmft') || (scope === 'scope:vmft' && qs === 'scope:mapreduce'))
      problems.push(`${name} (${scope}) may not depend on ${dep} (${qs})`);
  }
}
if (problems.length) {
  console.error('dependency rules broken:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log(`dependency rules hold for ${pkgs.size} projects`);
