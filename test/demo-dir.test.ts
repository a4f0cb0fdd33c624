/** The demo's folder: it deletes only what it made (`src/demo-dir.ts`), on real files. */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_MARKER, prepareDemoDir } from '../src/demo-dir.js';
import { isParleyError } from '../src/errors.js';
import { tempDir } from './cli/helpers.js';

const DBS = ['alice.db', 'bob.db'] as const;

/** Every file under `dir` (relative paths) with its content. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    out[path.slice(dir.length + 1)] = entry.isFile()
      ? readFileSync(path, 'latin1')
      : `<${entry.isDirectory() ? 'dir' : 'other'}>`;
  }
  return out;
}

function refused(run: () => void): string {
  try {
    run();
  } catch (err) {
    expect(isParleyError(err, 'DEMO_DIR_REFUSED'), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('not refused');
}

describe('prepareDemoDir', () => {
  const dirs: Array<{ dispose(): void }> = [];
  const dir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d.path;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });

  it('refuses a non-empty folder it did not make, and changes nothing in it', () => {
    const root = dir();
    mkdirSync(join(root, 'important'));
    writeFileSync(join(root, 'important', 'ledger.csv'), 'date,amount\n2024-01-02,100\n');
    writeFileSync(join(root, 'notes.txt'), Buffer.from([0, 1, 2, 255, 10]));
    // Even files with the demo's own names are not the demo's without the marker.
    writeFileSync(join(root, 'alice.db'), 'a user file that happens to be called alice.db');
    const before = snapshot(root);
    const message = refused(() => prepareDemoDir(root, DBS));
    expect(message).toContain(root);
    expect(message).toContain(DEMO_MARKER);
    expect(snapshot(root)).toEqual(before);
  });

  it('refuses a marker that is not the demo’s, a path that is a file, and a marked folder where a demo file is a folder', () => {
    const fake = dir();
    writeFileSync(join(fake, DEMO_MARKER), '{"madeBy":"someone else"}');
    writeFileSync(join(fake, 'bob.db'), 'x');
    const fakeBefore = snapshot(fake);
    refused(() => prepareDemoDir(fake, DBS));
    expect(snapshot(fake)).toEqual(fakeBefore);

    const file = join(dir(), 'plain-file');
    writeFileSync(file, 'keep');
    refused(() => prepareDemoDir(file, DBS));
    expect(readFileSync(file, 'utf8')).toBe('keep');

    const marked = join(dir(), 'demo');
    prepareDemoDir(marked, DBS);
    writeFileSync(join(marked, 'alice.db'), 'demo data');
    mkdirSync(join(marked, 'bob.db'));
    writeFileSync(join(marked, 'bob.db', 'inside.txt'), 'user data');
    const markedBefore = snapshot(marked);
    refused(() => prepareDemoDir(marked, DBS));
    expect(snapshot(marked)).toEqual(markedBefore);
  });

  it('makes a missing folder (and its parents) and marks it; marks an empty folder', () => {
    const missing = join(dir(), 'a', 'b', 'demo');
    prepareDemoDir(missing, DBS);
    expect(readdirSync(missing)).toEqual([DEMO_MARKER]);
    const empty = dir();
    prepareDemoDir(empty, DBS);
    expect(readdirSync(empty)).toEqual([DEMO_MARKER]);
  });

  it('reuses a folder it made: removes only its own database files, keeps everything else', () => {
    const demo = dir();
    prepareDemoDir(demo, DBS);
    for (const name of ['alice.db', 'alice.db-wal', 'alice.db-shm', 'alice.db.init-lock', 'bob.db-journal']) {
      writeFileSync(join(demo, name), 'demo data');
    }
    writeFileSync(join(demo, 'notes.txt'), 'mine');
    writeFileSync(join(demo, 'carol.db'), 'not one of the databases asked for');
    mkdirSync(join(demo, 'sub'));
    writeFileSync(join(demo, 'sub', 'alice.db'), 'a deeper file of the same name');
    const marker = readFileSync(join(demo, DEMO_MARKER), 'utf8');

    prepareDemoDir(demo, DBS);
    expect(snapshot(demo)).toEqual({
      [DEMO_MARKER]: marker,
      'notes.txt': 'mine',
      'carol.db': 'not one of the databases asked for',
      sub: '<dir>',
      'sub/alice.db': 'a deeper file of the same name',
    });
  });
});
