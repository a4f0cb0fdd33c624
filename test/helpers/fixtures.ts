import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where the LIP-1 v1 golden frames live. They are read in place, never copied into the
 * project. Override with `PARLEY_FIXTURES_DIR`.
 */
export const FIXTURES_DIR = resolve(
  process.env['PARLEY_FIXTURES_DIR'] ?? join(repoRoot, '..', 'shared', 'fixtures', 'lip1-v1'),
);

/** True when the golden frames are present; tests that need them skip (visibly) otherwise. */
export const HAVE_FIXTURES = existsSync(join(FIXTURES_DIR, 'keys.json'));

if (!HAVE_FIXTURES) {
  console.warn(
    `[parley tests] LIP-1 golden fixtures not found at ${FIXTURES_DIR}: fixture tests are skipped`,
  );
}

export function readFixtureJson<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES_DIR, name), 'utf8')) as T;
}

export function readFixtureLines<T = unknown>(name: string): T[] {
  return readFileSync(join(FIXTURES_DIR, name), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}
