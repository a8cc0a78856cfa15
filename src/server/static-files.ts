/**
 * The page at `/`: static files from src/server/public (no CDN, nothing fetched from
 * elsewhere). Only files directly in that folder are served, by an allow-list built at start,
 * so no path (`..`, encoded slashes, symlinks) can reach anything else.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../engine/native';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** Where the page lives: beside this module (when copied into dist) or in the source tree. */
export function defaultPublicDir(): string {
  const here = path.join(__dirname, 'public');
  if (fs.existsSync(path.join(here, 'index.html'))) return here;
  return path.join(packageRoot(), 'src', 'server', 'public');
}

export interface StaticFile {
  body: Buffer;
  type: string;
}

/** Loads the page's files once (they are small); returns url path -> file. */
export function loadStatic(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!fs.existsSync(dir)) return files;
  for (const name of fs.readdirSync(dir)) {
    const full = path.join(dir, name);
    const ext = path.extname(name).toLowerCase();
    if (!TYPES[ext] || !fs.statSync(full).isFile()) continue;
    files.set(`/${name}`, { body: fs.readFileSync(full), type: TYPES[ext] });
  }
  const index = files.get('/index.html');
  if (index) files.set('/', index);
  return files;
}
