/**
 * `npm run db:generate` (also the `postinstall` step): generates both Prisma clients,
 * `src/store/generated/sqlite` and `src/store/generated/postgresql`, from the two schemas.
 *
 * `prisma generate` needs no schema engine, but the CLI insists on finding one and cannot
 * download it here; any executable satisfies the check, so unless the caller set
 * `PRISMA_SCHEMA_ENGINE_BINARY` we point it at the running node binary (never called).
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { schemaPath } from '../../src/store/migrations.js';

const require = createRequire(import.meta.url);
const prismaCli = join(dirname(require.resolve('prisma/package.json')), 'build', 'index.js');

for (const engine of ['sqlite', 'postgresql'] as const) {
  const schema = relative(process.cwd(), schemaPath(engine));
  const result = spawnSync(process.execPath, [prismaCli, 'generate', '--no-hints', '--schema', schema], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      PRISMA_SCHEMA_ENGINE_BINARY: process.env['PRISMA_SCHEMA_ENGINE_BINARY'] ?? process.execPath,
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
    },
  });
  if (result.status !== 0) {
    console.error(`prisma generate failed for ${schema} (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}
