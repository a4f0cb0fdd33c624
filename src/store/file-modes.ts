/**
 * Owner-only files for a SQLite database (docs/security.md, "File permissions"): the database
 * holds KYC data and the signed log. The folders Parley creates for it are 0700; the database
 * file and its lock file are created 0600 before SQLite opens them, and SQLite gives the files
 * it makes beside the database (`-wal`, `-shm`, `-journal`) the database file's mode. A file or
 * folder that already exists keeps its mode (Parley does not change what it did not create).
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/** Mode of the folders created for a database. */
export const DATABASE_DIR_MODE = 0o700;
/** Mode of the database files created. */
export const DATABASE_FILE_MODE = 0o600;

/** Creates `file` with mode 0600 when it does not exist; leaves an existing one as it is. */
function createOwnerOnly(file: string): void {
  closeSync(openSync(file, 'a', DATABASE_FILE_MODE));
}

/**
 * Creates the folders of the SQLite database at `path` (0700) and, when absent, the database
 * file and `lockPath` (0600).
 * @throws the file system's error
 */
export function prepareSqliteFiles(path: string, lockPath: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: DATABASE_DIR_MODE });
  createOwnerOnly(path);
  createOwnerOnly(lockPath);
}
