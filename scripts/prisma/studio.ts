/**
 * `npm run studio [-- <store-url>] [-- --port 5555 --browser none]`: opens Prisma Studio on a
 * node's database.
 *
 * The database is the first non-option argument, else `PARLEY_DATABASE` (as for the node),
 * else the node's default `file:parley.db`. SQLite paths are resolved against the working
 * directory and handed to Studio as `file:///absolute/path` URLs; PostgreSQL URLs pass as they
 * are. Other arguments go to `prisma studio`.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseStoreUrl } from '../../src/store/store-url.js';

const args = process.argv.slice(2);
const positional = args.findIndex(
  (a, i) => !a.startsWith('-') && (i === 0 || !args[i - 1]!.startsWith('--')),
);
const url =
  positional >= 0 ? args.splice(positional, 1)[0]! : (process.env['PARLEY_DATABASE'] ?? 'file:parley.db');
const target = parseStoreUrl(url);
const studioUrl = target.engine === 'sqlite' ? pathToFileURL(target.path).href : target.url;

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
