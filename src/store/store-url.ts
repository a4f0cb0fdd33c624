/**
 * Which engine a store URL names, and where its database is.
 */
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ParleyError } from '../errors.js';

/** A parsed store location. */
export type StoreTarget = { engine: 'sqlite'; path: string } | { engine: 'postgresql'; url: string };

/**
 * Parses a store URL:
 * - `postgres://…` / `postgresql://…` → PostgreSQL (passed to node-postgres as is);
 * - `file:///abs/path.db`, `file:/abs/path.db`, `file:relative/path.db` (Prisma style, relative to
 *   the working directory) or a plain path → a SQLite file (absolute path returned).
 *
 * In-memory SQLite is refused: the store uses two connections, which would see two databases.
 *
 * @throws ParleyError `CONFIG_INVALID` for anything else.
 */
export function parseStoreUrl(url: string, cwd: string = process.cwd()): StoreTarget {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new ParleyError('CONFIG_INVALID', 'store url is empty');
  }
  if (/^postgres(ql)?:\/\//i.test(url)) return { engine: 'postgresql', url };
  let path: string;
  if (url.startsWith('file://')) {
    try {
      path = fileURLToPath(url.split('?')[0]!);
    } catch (err) {
      throw new ParleyError('CONFIG_INVALID', `bad file URL ${url}`, { cause: err });
    }
  } else if (url.startsWith('file:')) {
    path = url.slice('file:'.length).split('?')[0]!;
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new ParleyError('CONFIG_INVALID', `unsupported store url scheme: ${url.split(':')[0]}`);
  } else {
    path = url;
  }
  if (path === '' || path === ':memory:' || path.startsWith(':memory:')) {
    throw new ParleyError('CONFIG_INVALID', 'in-memory SQLite is not supported: use a file');
  }
  return { engine: 'sqlite', path: isAbsolute(path) ? path : resolve(cwd, path) };
}
