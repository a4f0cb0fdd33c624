/**
 * Which database `npm run studio` opens. It only ever opens a database that exists: Studio on a
 * missing SQLite path would create an empty file the user never asked for.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadNodeConfig } from '../../src/config.js';
import { ParleyError } from '../../src/errors.js';
import { parseStoreUrl, type StoreTarget } from '../../src/store/store-url.js';

/** The config file `parley init` writes, looked for in the working directory. */
const DEFAULT_CONFIG = 'parley.config.json';

export const STUDIO_USAGE = `Usage: npm run studio -- [<store-url> | --config <parley.config.json>] [prisma studio options]

  <store-url>        file:path/to/node.db (SQLite, relative to the working directory) or postgresql://…
  --config, -c FILE  the database of the node configured in FILE (PARLEY_DATABASE applies, as for the node)

With neither, the node of ./${DEFAULT_CONFIG} (as \`parley init\` writes it), else PARLEY_DATABASE.
A SQLite file that does not exist is refused: Studio never creates a database.
`;

export interface StudioTarget {
  target: StoreTarget;
  /** The URL handed to \`prisma studio --url\`. */
  studioUrl: string;
  /** Where the database was named: the argument, a config file, or PARLEY_DATABASE. */
  from: string;
  /** The arguments left for \`prisma studio\`. */
  rest: string[];
}

/**
 * Finds the database from the arguments, a config file or the environment, and checks that it
 * exists when it is a SQLite file.
 * @throws ParleyError `CONFIG_INVALID` when no database is named, the config does not load, or
 *   the SQLite file is missing (nothing is created)
 */
export function resolveStudioTarget(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): StudioTarget {
  const rest = [...args];
  const configAt = rest.findIndex((a) => a === '--config' || a === '-c');
  let config: string | undefined;
  if (configAt >= 0) {
    config = rest[configAt + 1];
    if (config === undefined || config.startsWith('-')) {
      throw new ParleyError('CONFIG_INVALID', '--config needs a file');
    }
    rest.splice(configAt, 2);
  }
  const positional = rest.findIndex(
    (a, i) => !a.startsWith('-') && (i === 0 || !rest[i - 1]!.startsWith('--')),
  );
  const url = positional >= 0 ? rest.splice(positional, 1)[0] : undefined;
  if (url !== undefined && config !== undefined) {
    throw new ParleyError('CONFIG_INVALID', 'give a store URL or --config, not both');
  }

  let database: string;
  let from: string;
  if (url !== undefined) {
    database = url;
    from = 'the argument';
  } else {
    const file = resolve(cwd, config ?? DEFAULT_CONFIG);
    if (config !== undefined || existsSync(file)) {
      database = loadNodeConfig(file, env).database;
      from = file;
    } else if (env['PARLEY_DATABASE']) {
      database = env['PARLEY_DATABASE'];
      from = 'PARLEY_DATABASE';
    } else {
      throw new ParleyError(
        'CONFIG_INVALID',
        `which database? There is no ${DEFAULT_CONFIG} in ${cwd} and PARLEY_DATABASE is not set: ` +
          'give a store URL or --config',
      );
    }
  }
  const target = parseStoreUrl(database, cwd);
  if (target.engine === 'sqlite' && !isFile(target.path)) {
    throw new ParleyError(
      'CONFIG_INVALID',
      `no database at ${target.path} (named by ${from}): Studio opens an existing database and never creates one`,
    );
  }
  const studioUrl = target.engine === 'sqlite' ? pathToFileURL(target.path).href : target.url;
  return { target, studioUrl, from, rest };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
