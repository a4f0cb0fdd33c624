/**
 * A background verify pool (`BACKGROUND_POOL`: a resync's histories): its threads run at the
 * nice value asked (Linux, per thread; the node's other threads keep theirs) and end once idle,
 * a later call starting new ones. Real worker threads, read from /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { generatePrivateKey, signJws } from '../../src/protocol/index.js';
import { createVerifyPool, type VerifyPool } from '../../src/protocol/verify-pool.js';

const linux = process.platform === 'linux';
if (!linux) console.warn('skipped: thread nice values are read from /proc (Linux only)');
// Run under `nice -n 10` or more, every thread is there already: nothing to tell apart.
const runsNiced = getPriority(0) >= 10;
if (linux && runsNiced) console.warn('skipped: the tests run at nice 10 or more already');

/** The nice value of each of this process's threads (field 19 of /proc/self/task/TID/stat). */
function threadNiceness(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
    } catch {
      return []; // the thread ended while listed
    }
  });
}

/** Resolves once `ok()` holds, checked after every turn of the event loop's timers phase. */
async function until(ok: () => boolean, what: string, bound = 20_000): Promise<void> {
  const end = Date.now() + bound;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not ${what} in ${bound} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const key = generatePrivateKey();
const checks = Array.from({ length: 64 }, (_, i) => ({
  jws: signJws(`{"n":${i}}`, key),
  key: key.publicKey,
}));
const niced = (): number => threadNiceness().filter((n) => n === 10).length;

describe.skipIf(!linux || runsNiced)('a background verify pool', () => {
  let pool: VerifyPool | undefined;
  afterEach(async () => {
    await pool?.close();
  });

  it('runs its threads at its nice value and leaves the others alone', async () => {
    expect(niced()).toBe(0);
    pool = createVerifyPool({ threads: 2, minBatch: 2, niceness: 10 });
    const results = await pool.verifyMany(checks);
    expect(results.every((r) => typeof r === 'string')).toBe(true);
    expect(niced()).toBeGreaterThanOrEqual(1);
    expect(getPriority(0)).toBe(0);
  });

  it('ends its threads once idle and starts new ones for the next call', async () => {
    pool = createVerifyPool({ threads: 2, minBatch: 2, niceness: 10, idleMs: 20 });
    await pool.verifyMany(checks);
    expect(niced()).toBeGreaterThanOrEqual(1);
    await until(() => niced() === 0, 'ended');
    const again = await pool.verifyMany(checks);
    expect(again.map(String)).toEqual(checks.map((_, i) => `{"n":${i}}`));
    expect(niced()).toBeGreaterThanOrEqual(1);
  });
});
