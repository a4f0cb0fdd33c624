import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/nodes.js';

describe('npm run demo (the README main command), bounded with --once', () => {
  it('plays the scenario: carol is killed, seen down, wiped, back with a new epoch, resynced; exits 0', async () => {
    const dir = tempDir();
    try {
      const child = spawn(
        'npm',
        [
          'run',
          'demo',
          '--',
          '--once',
          '--port-base',
          '0',
          '--kill-at',
          '4',
          '--down-for',
          '4',
          '--rate',
          '4',
          '--dir',
          dir.path,
        ],
        { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'], detached: true },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const guard = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 170_000);
      const [code] = (await once(child, 'exit')) as [number | null];
      clearTimeout(guard);
      expect(code, `${stdout}\n${stderr}`).toBe(0);
      for (const name of ['alice', 'bob', 'carol']) {
        expect(stdout).toMatch(new RegExp(`${name}\\s+http://127\\.0\\.0\\.1:\\d+/dashboard/`));
      }
      expect(stdout).toContain('killing carol and wiping her database');
      expect(stdout).toMatch(/(alice|bob): carol is down/);
      expect(stdout).toMatch(/(alice|bob): carol lost its state/);
      expect(stdout).toContain('carol is back');
      expect(stdout).toMatch(/stopped: \d+ payments started/);
      expect(stderr).toMatch(/\[\d\d:\d\d\] payments \d+ started/); // the progress line
    } finally {
      dir.dispose();
    }
  }, 180_000);
});
