/**
 * `npm run db:sync-schemas [-- --check]`: writes prisma/postgresql/schema.prisma from
 * prisma/sqlite/schema.prisma; with `--check`, only reports and exits 1 when they differ.
 */
import { relative } from 'node:path';
import { syncSchemas } from './schema-sync.js';

const check = process.argv.includes('--check');
const result = await syncSchemas({ write: !check });
const path = relative(process.cwd(), result.path);
if (!result.changed) {
  console.error(`${path} is in sync with prisma/sqlite/schema.prisma`);
} else if (check) {
  console.error(`${path} differs from prisma/sqlite/schema.prisma: run \`npm run db:sync-schemas\``);
  process.exitCode = 1;
} else {
  console.error(`wrote ${path}`);
}
