/**
 * Crash safety on SQLite: a child process commits in a loop and is SIGKILLed at a random point;
 * every commit it acknowledged must be there after reopening, and the store must be consistent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { PEER } from '../helpers/store.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const childScript = fileURLToPath(new URL('../helpers/store-child.ts', import.meta.url));

/** Starts the child; `lines` yields its stdout line by line. */
function startChild(args: string[]): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.on('exit', (code) => {
    if (code !== null && code !== 0) console.error(`store-child exited with ${code}:\n${stderr}`);
  });
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

describe('SQLite store under SIGKILL', () => {
  let dir: string;
  let file: string;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-crash-'));
    file = join(dir, 'store.db');
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged commit and stays consistent across repeated kills', async () => {
    const acked: string[] = [];
    let epoch: string | undefined;
    for (let run = 0; run < 5; run++) {
      const { child, lines } = startChild(['commit', file, `r${run}`, '8']);
      children.push(child);
      // Kill at a random moment: after a random number of acknowledgements, with commits of
      // the eight workers in flight.
      const killAfter = randomInt(1, 400);
      let seen = 0;
      for await (const line of lines) {
        if (line.startsWith('ack ')) {
          acked.push(line.slice(4));
          seen += 1;
          if (seen === killAfter) child.kill('SIGKILL');
        }
      }
      await exited(child);
      expect(child.signalCode).toBe('SIGKILL');
      expect(seen).toBeGreaterThanOrEqual(killAfter);

      const store = await openStore({ url: `file:${file}` });
      try {
        expect(await store.checkIntegrity()).toEqual([]);
        const id = await store.identity();
        epoch ??= id.epoch;
        expect(id.epoch).toBe(epoch);
        for (const cid of acked) expect(await store.findCommand(PEER, cid), cid).toBeDefined();
      } finally {
        await store.close();
      }
    }
  });

  it('lets several processes open a new database at once: one epoch, migrations applied once', async () => {
    const runs = Array.from({ length: 3 }, () => startChild(['open', file]));
    children.push(...runs.map((r) => r.child));
    const epochs = await Promise.all(
      runs.map(async ({ child, lines }) => {
        let epoch: string | undefined;
        for await (const line of lines) if (line.startsWith('epoch ')) epoch = line.slice(6);
        await exited(child);
        expect(child.exitCode).toBe(0);
        return epoch;
      }),
    );
    expect(epochs[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(epochs).size).toBe(1);
    const db = new Database(file, { readonly: true });
    try {
      const rows = db.prepare('SELECT migration_name, finished_at FROM _prisma_migrations').all() as Array<{
        migration_name: string;
        finished_at: unknown;
      }>;
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.finished_at !== null)).toBe(true);
      const names = rows.map((r) => r.migration_name);
      expect(new Set(names).size).toBe(names.length);
    } finally {
      db.close();
    }
  });
});
