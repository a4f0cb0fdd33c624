/**
 * The demo's folder (`parley demo --dir`): the demo deletes only what it made. It uses a folder
 * that does not exist yet or is empty, and marks it with {@link DEMO_MARKER}; a marked folder is
 * reused, and only the demo's own database files in it are removed. Any other folder is refused
 * with `DEMO_DIR_REFUSED` and left exactly as it was.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ParleyError } from './errors.js';

/** The marker file `parley demo` writes in a folder it made its own. */
export const DEMO_MARKER = '.parley-demo.json';
const MADE_BY = 'parley demo';

/** The companion files SQLite and the store make beside a database file. */
const DATABASE_SUFFIXES = ['', '-wal', '-shm', '-journal', '.init-lock'] as const;

/** The files a demo database `<name>.db` consists of, by name. */
export function demoDatabaseFiles(dbFile: string): string[] {
  return DATABASE_SUFFIXES.map((suffix) => `${dbFile}${suffix}`);
}

/**
 * Makes `dir` ready for the demo's databases `dbFiles` (file names, not paths):
 * - missing, or an empty folder: created if need be, and marked;
 * - a folder with the marker: the files of `dbFiles` in it are removed (nothing else);
 * - anything else: refused, nothing changed.
 * @throws ParleyError `DEMO_DIR_REFUSED`
 */
export function prepareDemoDir(dir: string, dbFiles: readonly string[]): void {
  const kind = kindOf(dir);
  if (kind === 'missing') {
    mkdirSync(dir, { recursive: true });
    mark(dir);
    return;
  }
  if (kind !== 'directory') {
    throw new ParleyError('DEMO_DIR_REFUSED', `${dir} is not a folder: nothing was changed`);
  }
  const entries = readdirSync(dir);
  if (entries.length === 0) {
    mark(dir);
    return;
  }
  if (!entries.includes(DEMO_MARKER) || !isMarker(join(dir, DEMO_MARKER))) {
    throw new ParleyError(
      'DEMO_DIR_REFUSED',
      `${dir} is not empty and was not made by parley demo (no ${DEMO_MARKER} in it): nothing was ` +
        'changed. Give --dir a new or empty folder (or remove an old demo folder yourself).',
    );
  }
  const ours = dbFiles.flatMap(demoDatabaseFiles);
  for (const name of ours) {
    const path = join(dir, name);
    const found = kindOf(path);
    if (found === 'missing') continue;
    if (found !== 'file') {
      throw new ParleyError(
        'DEMO_DIR_REFUSED',
        `${path} is not a file the demo made (a ${found}): nothing was changed`,
      );
    }
  }
  for (const name of ours) rmSync(join(dir, name), { force: true });
}

type Kind = 'missing' | 'file' | 'directory' | 'symbolic link' | 'special file';

function kindOf(path: string): Kind {
  try {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return 'symbolic link';
    if (stat.isDirectory()) return 'directory';
    return stat.isFile() ? 'file' : 'special file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new ParleyError('DEMO_DIR_REFUSED', `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function mark(dir: string): void {
  const marker = {
    madeBy: MADE_BY,
    note: 'parley demo made this folder; when it runs here again it deletes only its own database files',
    createdAt: new Date().toISOString(),
  };
  writeFileSync(join(dir, DEMO_MARKER), `${JSON.stringify(marker, null, 2)}\n`, { flag: 'wx' });
}

function isMarker(path: string): boolean {
  if (kindOf(path) !== 'file') return false;
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { madeBy?: unknown }).madeBy === MADE_BY;
  } catch {
    return false;
  }
}
