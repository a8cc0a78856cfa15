#!/usr/bin/env node
// Lists the node_modules folders (relative paths) that the given root packages need at run
// time: the dependency closure through package.json dependencies / optionalDependencies /
// peerDependencies that are installed. Used by device-pack.sh to carry only what runs there.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const seen = new Set();
function findPackage(name, fromDir) {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}
function visit(pkgDir) {
  if (seen.has(pkgDir)) return;
  seen.add(pkgDir);
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const deps = { ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies };
  for (const name of Object.keys(deps)) {
    const dir = findPackage(name, pkgDir);
    if (dir) visit(dir);
  }
}
for (const name of process.argv.slice(2)) {
  const dir = findPackage(name, root);
  if (!dir) { console.error(`runtime-deps: ${name} is not installed`); process.exit(1); }
  visit(dir);
}
for (const dir of [...seen].sort()) console.log(relative(root, dir));
