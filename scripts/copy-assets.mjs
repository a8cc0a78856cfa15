#!/usr/bin/env node
// Copies the non-TypeScript assets that dist/ needs (the server's static page) after tsc.
import { cpSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
for (const dir of ['server/public']) {
  const from = resolve(root, 'src', dir);
  if (existsSync(from)) cpSync(from, resolve(root, 'dist', dir), { recursive: true });
}
