#!/usr/bin/env node
// `npm run readme:results`: rewrites the README's results table (between the
// <!-- results:begin ... --> and <!-- results:end --> markers) from datasets/results and
// datasets/peers.json. `--check` changes nothing and exits 1 when the README differs (npm test
// runs the same check as test/unit/lab-readme.test.ts). Needs the compiled package (dist/).
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const compiled = join(root, 'dist', 'results', 'readme.js');
if (!existsSync(compiled)) {
  console.error('readme:results: dist/ is not built (run `npm run build:ts` first)');
  process.exit(2);
}
const { updatedReadme } = createRequire(import.meta.url)(compiled);
const { readme, updated } = updatedReadme(root);
if (process.argv.includes('--check')) {
  if (readme !== updated) {
    console.error('readme:results: README.md differs from datasets/results: run `npm run readme:results`');
    process.exit(1);
  }
  console.log('readme:results: README.md matches datasets/results');
} else if (readme === updated) {
  console.log('readme:results: README.md already matches datasets/results');
} else {
  writeFileSync(join(root, 'README.md'), updated);
  console.log('readme:results: README.md results table rewritten from datasets/results');
}
