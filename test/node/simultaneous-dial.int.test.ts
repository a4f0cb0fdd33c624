/**
 * Two node processes that know each other's URL start at the same moment, so each dials the
 * other: both must end up on the same single connection (the registry's deterministic
 * tie-break, 4409 for the loser), and payments flow over it.
 */
import { merge } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CHANNEL_PATH } from '../../src/transport/defaults.js';
import {
  type ChildLine,
  createNodeDatabase,
  createNodeProcess,
  freePort,
  type NodeProcess,
  type TaggedLine,
  untilQuiet,
  waitForLine,
} from '../helpers/node-process.js';
import { testIdentity } from '../helpers/nodes.js';
import { expectIdenticalSignedLogs } from './signed-logs.js';

/** Starts both at once; resolves when each has a connection to the other. */
async function startTogether(a: NodeProcess, b: NodeProcess): Promise<void> {
  const connected = [a, b].map((p) =>
    waitForLine(
      p.lines$,
      (line): line is Extract<ChildLine, { t: 'conn' }> => line.t === 'conn',
      60_000,
      `${p.name} connected`,
    ),
  );
  await Promise.all([a.start(), b.start()]);
  await Promise.all(connected);
}

/** Each side's current connection to the other, once both agree on one (re-checked on every line). */
async function sharedConnection(a: NodeProcess, b: NodeProcess): Promise<string> {
  const lines$ = merge(a.lines$, b.lines$);
  for (let round = 0; round < 50; round++) {
    // Listen before asking, so a change between the answers and the wait is not missed.
    const change = waitForLine(
      lines$,
      (line): line is ChildLine => line.t === 'conn' || line.t === 'disc',
      30_000,
      'a connection change',
    );
    change.catch(() => undefined);
    const [sa, sb] = await Promise.all([a.status(), b.status()]);
    const ida = sa.connections[b.address] ?? null;
    const idb = sb.connections[a.address] ?? null;
    if (ida !== null && ida === idb) return ida;
    // A duplicate is still being closed: wait for the next connection event of either side.
    await change;
  }
  throw new Error('the two nodes never agreed on one connection');
}

describe('simultaneous dial between two node processes', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('ends with exactly one live connection, the same on both sides, and payments flow', {
    timeout: 300_000,
  }, async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const [idA, idB] = [testIdentity(0xa1), testIdentity(0xa2)];
    const [portA, portB] = [await freePort(), await freePort()];
    const url = (port: number) => `ws://127.0.0.1:${port}${DEFAULT_CHANNEL_PATH}`;
    const a = createNodeProcess({
      name: 'A',
      identity: idA,
      peers: [{ identity: idB, url: url(portB) }],
      database: dbA.url,
      port: portA,
    });
    const b = createNodeProcess({
      name: 'B',
      identity: idB,
      peers: [{ identity: idA, url: url(portA) }],
      database: dbB.url,
      port: portB,
    });
    cleanups.push(a.dispose, b.dispose);
    const lines: TaggedLine[] = [];
    const sub = merge(a.lines$, b.lines$).subscribe((l) => lines.push(l));
    cleanups.push(() => sub.unsubscribe());

    // Twice: on fresh databases, then both restarted together on the same ones.
    for (let round = 0; round < 2; round++) {
      if (round > 0) {
        expect(await Promise.all([a.stop(), b.stop()])).toEqual([0, 0]);
      }
      await startTogether(a, b);
      expect(await sharedConnection(a, b)).toMatch(/^[0-9a-f]{32}$/);

      a.request({ op: 'pay', to: b.address, count: 25 });
      b.request({ op: 'pay', to: a.address, count: 25 });
      await untilQuiet([a, b], 120_000);
      // Still one connection, the same on both sides (a reconnect in between would be allowed:
      // what must never happen is two live ones).
      expect(await sharedConnection(a, b)).toMatch(/^[0-9a-f]{32}$/);
    }

    expect(await Promise.all([a.stop(), b.stop()])).toEqual([0, 0]);
    const report = await expectIdenticalSignedLogs(
      { db: dbA, peer: idB.address },
      { db: dbB, peer: idA.address },
    );
    expect(report.refs.size).toBe(100);
    expect(lines.filter(({ line }) => line.t === 'error')).toEqual([]);
  });
});
