/**
 * The short chaos run (`npm run chaos`, docs/chaos.md) as part of the suite: three `parley start`
 * processes under steady payments, SIGKILLs, a wipe and TCP faults, then the invariant check.
 * It must exit 0 with a summary that shows it did what it says. The script runs in its own
 * process group, so whatever happens, every process it started is killed at the end.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** A seed from the environment replays a failed run's schedule. */
const seed = process.env['PARLEY_CHAOS_SEED'] ?? String(Math.floor(Math.random() * 2 ** 31));

interface Summary {
  chaos: 'summary';
  ok: boolean;
  seed: number;
  payments: { acknowledged: number; completed: number; accepted: number };
  faults: { kills: number; wipes: number; cuts: number; stalls: number; delays: number };
  check: { acknowledgedOnBoth: number; objects: number } | null;
  violations: number;
}

describe('npm run chaos (short run)', () => {
  let group: number | undefined;
  afterEach(() => {
    // The script's process group: the script and every node and `parley check` it started.
    if (group !== undefined) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    group = undefined;
  });

  it('keeps every invariant through kills, a wipe, cuts, stalls and delays', {
    timeout: 300_000,
  }, async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(repoRoot, 'scripts/chaos/run.ts'),
        '--duration',
        '45s',
        '--settle',
        '90s',
        '--deadline',
        '270s',
        '--seed',
        seed,
      ],
      { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    group = child.pid;
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));

    const line = out.split('\n').find((l) => l.startsWith('{"chaos":"summary"'));
    // The summary in the test log, so that CI shows what the run did.
    if (line) console.info(out.slice(out.indexOf(line)));
    expect(line, out).toBeDefined();
    const summary = JSON.parse(line!) as Summary;
    expect({ code, ok: summary.ok, violations: summary.violations }, out).toEqual({
      code: 0,
      ok: true,
      violations: 0,
    });
    expect(summary.seed).toBe(Number(seed));
    expect(summary.payments.acknowledged, out).toBeGreaterThan(0);
    expect(summary.payments.accepted, out).toBeGreaterThan(0);
    expect(summary.payments.completed, out).toBeGreaterThan(0);
    expect(summary.faults.kills, out).toBeGreaterThan(0);
    expect(summary.faults.wipes, out).toBe(1);
    expect(summary.faults.cuts, out).toBeGreaterThan(0);
    expect(summary.faults.stalls, out).toBeGreaterThan(0);
    expect(summary.faults.delays, out).toBeGreaterThan(0);
    expect(summary.check?.acknowledgedOnBoth, out).toBeGreaterThan(0);
  });
});
