/** `parley demo`, the real executable: the whole story in one command. */
import { afterEach, describe, expect, it } from 'vitest';
import { spawnParley, tempDir } from './helpers.js';

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
});
