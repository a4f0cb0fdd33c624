import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import { freePort } from '../helpers/node-process.js';
import { tempDir } from '../helpers/nodes.js';

const START_BUDGET_MS = 90_000;
const STOP_BUDGET_MS = 15_000;

/** What Prisma Studio prints once its server listens. */
const LISTENING = 'Prisma Studio is running at:';

/**
 * `npm run studio -- <url> --port <port> --browser none`, in its own process group. `listening`
 * resolves when Studio prints that it listens, and rejects if it exits first.
 */
function startStudio(
  url: string,
  port: number,
): { child: ChildProcess; output: () => string; listening: Promise<void> } {
  let output = '';
  const child = spawn('npm', ['run', 'studio', '--', url, '--port', String(port), '--browser', 'none'], {
    cwd: process.cwd(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BROWSER: 'none', CI: 'true' },
  });
  const listening = new Promise<void>((resolve, reject) => {
    const take = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(LISTENING)) resolve();
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.on('exit', (code, signal) =>
      reject(new Error(`studio exited (${code ?? signal}) before listening:\n${output}`)),
    );
  });
  listening.catch(() => undefined); // (awaited by the test; an exit after it is not an error)
  return { child, output: () => output, listening };
}

/** Stops the whole process group (npm, tsx, the Prisma CLI) and waits for npm to exit. */
async function stop(child: ChildProcess, budgetMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  const exited = once(child, 'exit').then(() => true);
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    return true; // already gone
  }
  const inTime = await Promise.race([
    exited,
    new Promise<false>((resolve) => setTimeout(() => resolve(false), budgetMs).unref()),
  ]);
  if (!inTime) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await exited;
  }
  return inTime;
}

/** The status of `url` once Studio says it listens (bounded by `budgetMs`). */
async function statusOnceListening(
  url: string,
  studio: { listening: Promise<void>; output: () => string },
  budgetMs: number,
): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`studio not listening:\n${studio.output()}`)), budgetMs);
  });
  try {
    await Promise.race([studio.listening, expired]);
  } finally {
    clearTimeout(timer);
  }
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
}

/** Runs SQL through Studio's own backend (what its UI does), proving it opened the database. */
async function studioQuery(port: number, sql: string): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}/bff`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ procedure: 'query', query: { sql, parameters: [] } }),
  });
  return res.json();
}

describe('npm run studio (smoke)', () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('opens Prisma Studio on a node SQLite database: starts, answers HTTP 200, reads the data, stops', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const path = join(dir.path, 'node.db');
    const store = await openStore({ url: `file:${path}` });
    const { epoch } = await store.identity();
    await store.close();

    const port = await freePort();
    const studio = startStudio(`file:${path}`, port);
    cleanups.push(() => stop(studio.child, 1000));
    const status = await statusOnceListening(`http://127.0.0.1:${port}/`, studio, START_BUDGET_MS);
    expect(status, studio.output()).toBe(200);
    expect(studio.output()).toContain(`Prisma Studio on ${path}`);
    expect(JSON.stringify(await studioQuery(port, 'select epoch from identity'))).toContain(epoch);

    expect(await stop(studio.child, STOP_BUDGET_MS)).toBe(true);
    // Stopped: the port no longer answers.
    await expect(fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  });

  it.runIf(process.env['TEST_PG_URL'])('opens Prisma Studio on a PostgreSQL URL', async () => {
    const port = await freePort();
    const studio = startStudio(process.env['TEST_PG_URL']!, port);
    cleanups.push(() => stop(studio.child, 1000));
    const status = await statusOnceListening(`http://127.0.0.1:${port}/`, studio, START_BUDGET_MS);
    expect(status, studio.output()).toBe(200);
    expect(JSON.stringify(await studioQuery(port, 'select 41 + 1 as answer'))).toContain('42');
    expect(await stop(studio.child, STOP_BUDGET_MS)).toBe(true);
  });
});
