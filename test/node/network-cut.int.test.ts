/**
 * The network between two node processes is cut (a TCP relay drops every connection and
 * refuses new ones) while both keep sending: the commands queue durably, then flush after the
 * reconnect and complete.
 */
import { merge } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ChildLine,
  createNodeDatabase,
  createNodeProcess,
  type NodeProcess,
  type TaggedLine,
  untilQuiet,
  waitForLine,
} from '../helpers/node-process.js';
import { testIdentity } from '../helpers/nodes.js';
import { createRelay, type Relay } from '../helpers/relay.js';
import { expectIdenticalSignedLogs } from './signed-logs.js';

/** Dials refused before the cut ends: with the dialer's default backoff (100 ms, doubling, full jitter) about 3 s. */
const REFUSED_DIALS = 6;

function untilRelay(relay: Relay, check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (check()) return resolve();
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const sub = relay.events$.subscribe(() => {
      if (!check()) return;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve();
    });
  });
}

/** Resolves after `count` `queued` lines (commands durable in the outbox) of `proc`. */
function untilQueued(proc: NodeProcess, count: number, timeoutMs: number): Promise<void> {
  let seen = 0;
  return waitForLine(
    proc.lines$,
    (line): line is ChildLine => line.t === 'queued' && ++seen >= count,
    timeoutMs,
    `${count} queued commands of ${proc.name}`,
  ).then(() => undefined);
}

describe('a network cut between two node processes', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('queues the commands sent during the cut and flushes them after the reconnect', {
    timeout: 300_000,
  }, async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const [idA, idB] = [testIdentity(0x81), testIdentity(0x82)];
    const b = createNodeProcess({ name: 'B', identity: idB, peers: [{ identity: idA }], database: dbB.url });
    cleanups.push(b.dispose);
    await b.start();
    const relay = await createRelay(b.url);
    cleanups.push(() => relay.close());
    // A reaches B only through the relay; B has no URL for A and waits to be dialed.
    const a = createNodeProcess({
      name: 'A',
      identity: idA,
      peers: [{ identity: idB, url: relay.url }],
      database: dbA.url,
    });
    cleanups.push(a.dispose);
    const lines: TaggedLine[] = [];
    const sub = merge(a.lines$, b.lines$).subscribe((l) => lines.push(l));
    cleanups.push(() => sub.unsubscribe());
    await a.start();

    // Traffic before the cut.
    a.request({ op: 'pay', to: b.address, count: 50 });
    b.request({ op: 'pay', to: a.address, count: 50 });
    await untilQuiet([a, b], 120_000);

    // Cut: both sides see the connection drop.
    const bothDown = Promise.all(
      [a, b].map((p) =>
        waitForLine(
          p.lines$,
          (line): line is Extract<ChildLine, { t: 'disc' }> => line.t === 'disc',
          30_000,
          'disconnect',
        ),
      ),
    );
    relay.cut();
    await bothDown;
    const cutAt = lines.length;

    // Commands during the cut: both sides sequence them (durable in the outbox) and hold them.
    const queued = Promise.all([untilQueued(a, 100, 60_000), untilQueued(b, 100, 60_000)]);
    a.request({ op: 'pay', to: b.address, count: 100 });
    b.request({ op: 'pay', to: a.address, count: 100 });
    await queued;
    await untilRelay(relay, () => relay.refused >= REFUSED_DIALS, 120_000, `${REFUSED_DIALS} refused dials`);
    const duringCut = lines.slice(cutAt);
    expect(duringCut.filter(({ line }) => line.t === 'cmd')).toEqual([]);
    expect(duringCut.filter(({ line }) => line.t === 'conn')).toEqual([]);

    // Resume: A's dialer gets through at its next attempt; everything queued flushes.
    const reconnected = waitForLine(
      a.lines$,
      (line): line is Extract<ChildLine, { t: 'conn' }> => line.t === 'conn',
      120_000,
      'reconnect',
    );
    relay.resume();
    await reconnected;
    await untilQuiet([a, b], 120_000);

    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    const report = await expectIdenticalSignedLogs(
      { db: dbA, peer: idB.address },
      { db: dbB, peer: idA.address },
    );
    expect(report.refs.size).toBe(300);
    expect(report.logA).toHaveLength(1500);
    expect(lines.filter(({ line }) => line.t === 'error')).toEqual([]);
  });
});
