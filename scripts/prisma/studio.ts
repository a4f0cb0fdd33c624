/**
 * `npm run studio [-- <store-url> | --config <file>] [-- --port 5555 --browser none]`: opens
 * Prisma Studio on a node's existing database.
 *
 * The database is the store URL given, else the one of the node configured in `--config <file>`,
 * else that of `./parley.config.json` (where `parley init` writes it), else `PARLEY_DATABASE`;
 * with none of them it asks for one (exit 2). A SQLite file that does not exist is refused
 * (exit 2): Studio would create an empty database. SQLite paths are resolved against the working
 * directory and handed to Studio as `file:///absolute/path` URLs; PostgreSQL URLs pass as they
 * are. Other arguments go to `prisma studio`.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isParleyError } from '../../src/errors.js';
import { resolveStudioTarget, STUDIO_USAGE, type StudioTarget } from './studio-target.js';

let found: StudioTarget;
try {
  found = resolveStudioTarget(process.argv.slice(2), process.env, process.cwd());
} catch (err) {
  if (!isParleyError(err)) throw err;
  process.stderr.write(`studio: ${err.code}: ${err.message}\n\n${STUDIO_USAGE}`);
  process.exit(2);
}
const { target, studioUrl, rest: args } = found;

const require = createRequire(import.meta.url);
const prismaCli = join(dirname(require.resolve('prisma/package.json')), 'build', 'index.js');
console.error(`Prisma Studio on ${target.engine === 'sqlite' ? target.path : '(PostgreSQL URL)'}`);
const child = spawn(process.execPath, [prismaCli, 'studio', '--url', studioUrl, ...args], {
  stdio: 'inherit',
  env: {
    ...process.env,
    // Studio does not run the schema engine, but the CLI wants one to exist.
    PRISMA_SCHEMA_ENGINE_BINARY: process.env['PRISMA_SCHEMA_ENGINE_BINARY'] ?? process.execPath,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
  },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
