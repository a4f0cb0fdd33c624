/**
 * Two VASP nodes in two processes on 127.0.0.1, each on its own database: payments in both
 * directions at once, then the databases are compared after both processes exited.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ChildLine,
  createNodeDatabase,
  createNodeProcess,
  untilQuiet,
} from '../helpers/node-process.js';
import { testIdentity } from '../helpers/nodes.js';
import { expectIdenticalSignedLogs } from './signed-logs.js';

describe('two VASP nodes in two processes', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('settle 1,000 payments sent both ways at once; both databases hold identical signed logs', {
    timeout: 300_000,
  }, async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const [idA, idB] = [testIdentity(0x51), testIdentity(0x52)];
    const b = createNodeProcess({ name: 'B', identity: idB, peers: [{ identity: idA }], database: dbB.url });
    cleanups.push(b.dispose);
    await b.start();
    const a = createNodeProcess({
      name: 'A',
      identity: idA,
      peers: [{ identity: idB, url: b.url }],
      database: dbA.url,
    });
    cleanups.push(a.dispose);
    await a.start();

    const lines: Array<{ node: string; line: ChildLine }> = [];
    const sub = a.lines$.subscribe((l) => lines.push(l));
    const subB = b.lines$.subscribe((l) => lines.push(l));
    cleanups.push(
      () => sub.unsubscribe(),
      () => subB.unsubscribe(),
    );

    // 1,000 payments: ten rounds of 50 each way, all requested at once, so creates and updates
    // of both directions interleave on the one channel.
    for (let round = 0; round < 10; round++) {
      a.request({ op: 'pay', to: b.address, count: 50 });
      b.request({ op: 'pay', to: a.address, count: 50 });
    }
    await untilQuiet([a, b], 150_000, () => created(lines) >= 1000);

    expect(lines.filter(({ line }) => line.t === 'error')).toEqual([]);
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);

    const report = await expectIdenticalSignedLogs(
      { db: dbA, peer: idB.address },
      { db: dbB, peer: idA.address },
    );
    expect(report.refs.size).toBe(1000);
    // Both directions: 500 payments created by each side, five commands each, no failures.
    const creates = report.logA.filter((r) => r.read === null);
    expect(creates.filter((r) => r.direction === 'outbound')).toHaveLength(500);
    expect(report.logA).toHaveLength(5000);
    expect(report.logA.every((r) => r.status === 'success')).toBe(true);
  });
});

/** Creates acknowledged so far (the sender's success outcome of a create). */
function created(lines: Array<{ line: ChildLine }>): number {
  return lines.filter(
    ({ line }) => line.t === 'cmd' && line.dir === 'out' && line.create && line.status === 'success',
  ).length;
}
