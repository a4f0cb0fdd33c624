/** `parley demo`, the real executable: the whole story in one command. */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_MARKER } from '../../src/demo-dir.js';
import { spawnParley, spawnParleyPiped, tempDir } from './helpers.js';

describe('parley demo (child process, free ports, SQLite files)', () => {
  const dirs: Array<{ dispose(): void }> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });

  it('plays the scenario with --once: payments flow, carol is wiped and rebuilt, exit 0', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const demo = spawnParley([
      'demo',
      '--once',
      '--port-base',
      '0',
      '--dir',
      dir.path,
      '--kill-at',
      '2',
      '--down-for',
      '1',
      '--rate',
      '5',
    ]);
    const { code } = await demo.exited;
    expect(demo.stdout()).toContain('killing carol and wiping her database');
    expect(demo.stdout()).toContain('carol is back: alice and bob resynced her open objects');
    expect(code).toBe(0);
  });

  it('answers --help with its options, and a bad option with exit 2', async () => {
    const help = spawnParley(['demo', '--help']);
    expect((await help.exited).code).toBe(0);
    expect(help.stdout()).toContain('Usage: parley demo [options]');
    const bad = spawnParley(['demo', '--rate', 'fast']);
    expect((await bad.exited).code).toBe(2);
    expect(bad.stderr()).toContain('--rate must be a number');
  });

  it('refuses a non-empty folder it did not make (exit 2, DEMO_DIR_REFUSED): every file stays byte for byte', async () => {
    const dir = tempDir();
    dirs.push(dir);
    mkdirSync(join(dir.path, 'important'));
    const ledger = Buffer.from('date,amount,currency\n2024-03-01,125000,XUS\n\u00ff');
    const notes = Buffer.from('call bob about the March settlement\n');
    writeFileSync(join(dir.path, 'important', 'ledger.csv'), ledger);
    writeFileSync(join(dir.path, 'notes.txt'), notes);
    const demo = spawnParley(['demo', '--once', '--port-base', '0', '--dir', dir.path]);
    expect((await demo.exited).code).toBe(2);
    expect(demo.stderr()).toContain('DEMO_DIR_REFUSED');
    expect(demo.stderr()).toContain(dir.path);
    expect(demo.stderr()).toContain('nothing was changed');
    expect(readdirSync(dir.path).sort()).toEqual(['important', 'notes.txt']);
    expect(readdirSync(join(dir.path, 'important'))).toEqual(['ledger.csv']);
    expect(readFileSync(join(dir.path, 'important', 'ledger.csv')).equals(ledger)).toBe(true);
    expect(readFileSync(join(dir.path, 'notes.txt')).equals(notes)).toBe(true);
  });

  it('makes a new folder its own, and reuses it next time: only its databases are replaced', async () => {
    const root = tempDir();
    dirs.push(root);
    const dir = join(root.path, 'new', 'demo');
    const run = async (): Promise<void> => {
      const demo = spawnParley(['demo', '--duration', '0', '--port-base', '0', '--dir', dir]);
      expect((await demo.exited).code, demo.stderr()).toBe(0);
    };
    await run();
    expect(readdirSync(dir)).toEqual(expect.arrayContaining([DEMO_MARKER, 'alice.db', 'bob.db', 'carol.db']));
    const marker = readFileSync(join(dir, DEMO_MARKER), 'utf8');
    writeFileSync(join(dir, 'my-notes.txt'), 'kept');
    writeFileSync(join(dir, 'alice.db'), 'replaced: the demo made this file');
    await run();
    expect(readFileSync(join(dir, 'my-notes.txt'), 'utf8')).toBe('kept');
    expect(readFileSync(join(dir, DEMO_MARKER), 'utf8')).toBe(marker);
    // A new database: SQLite's header, not what was written there.
    expect(readFileSync(join(dir, 'alice.db')).subarray(0, 15).toString('latin1')).toBe('SQLite format 3');
  });

  it('stops cleanly on Ctrl-C with its stdout on a pipe whose reader is gone (exit 0, databases closed)', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const run = spawnParleyPiped(
      ['demo', '--port-base', '0', '--dir', dir.path],
      { headUntil: 'databases:' },
      false,
    );
    dirs.unshift({ dispose: () => run.node.exitCode === null && run.node.kill('SIGKILL') }); // if it failed early
    expect(await run.firstLine).toContain('databases:');
    expect(await run.readerExited).toEqual({ code: 0, signal: null });
    run.node.kill('SIGINT');
    expect(await run.nodeExited, run.stderr()).toEqual({ code: 0, signal: null });
    for (const name of ['alice', 'bob', 'carol']) {
      const db = join(dir.path, `${name}.db`);
      expect(existsSync(db)).toBe(true);
      expect(existsSync(`${db}-wal`), `${name}.db-wal`).toBe(false);
      expect(existsSync(`${db}-shm`), `${name}.db-shm`).toBe(false);
    }
  });
});
