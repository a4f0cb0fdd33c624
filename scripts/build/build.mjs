#!/usr/bin/env node
// `npm run build`: compiles src/ (with the generated Prisma clients) to dist/ with declarations,
// and copies the files the compiled code reads at run time (the verify worker, the dashboard's
// page). Plain Node.js, so it runs without tsx.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'dist');
if (!existsSync(join(root, 'src/store/generated/sqlite'))) {
  console.error('build: src/store/generated is missing: run `npm run db:generate` first');
  process.exit(1);
}
// dist/ is made by this script only, so removing it removes nothing a user made.
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (result.status !== 0) process.exit(result.status ?? 1);
for (const asset of ['protocol/verify-worker.mjs', 'dashboard/public', 'protocol/PROTOCOL.md']) {
  cpSync(join(root, 'src', asset), join(dist, asset), { recursive: true });
}
console.log('build: dist/ is ready');
