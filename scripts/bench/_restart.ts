/**
 * Reconnect after a restart (part of the `detection` benchmark): two node processes (SQLite
 * files), one of them stopped cleanly (SIGTERM: it closes its connection with 1001) and started
 * again on the same database and port, `restarts` times. The figure is the time from the
 * restarted process's `ready` line (printed right after it listens and starts its dialers) to
 * the moment both processes report the new connection (`conn` lines with the same id; a
 * channel's health is `healthy` from its connection on, see `channel-health.ts`).
 *
 * Two cases, as a deployment has them: the restarted node has the peer's URL (it dials), or it
 * has none (it waits for the peer to redial it). The `down` transitions the surviving node
 * reports during a restart are counted too (a restart that is noticed as an outage).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Subscription } from 'rxjs';
import {
  type ChildLine,
  createNodeProcess,
  type NodeProcess,
  type TaggedLine,
} from '../../test/helpers/node-process.js';
import { testIdentity } from '../../test/helpers/nodes.js';

/** A reconnect slower than this fails the run. */
const LIMIT_MS = 60_000;

export type RestartCase = 'restarted-dials' | 'restarted-waits';

export interface RestartResult {
  case: RestartCase;
  /** From `ready` of the restarted process to the new connection on both sides, per restart. */
  reconnectMs: number[];
  /** From the stop (SIGTERM) to `ready` of the restarted process, per restart. */
  awayMs: number[];
  /** `down` transitions the surviving node reported for the restarted one, over all restarts. */
  survivorDowns: number;
  /** `down` transitions the restarted node reported for the survivor (startup grace), over all restarts. */
  restartedDowns: number;
}

type ConnLine = Extract<ChildLine, { t: 'conn' }>;

/** Resolves with the arrival time of the first new connection `proc` reports to `peer`. */
function connectedAt(
  proc: NodeProcess,
  peer: string,
  run: number | undefined,
): Promise<ConnLine & { at: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`${proc.name}: no connection to the restarted peer within ${LIMIT_MS} ms`));
    }, LIMIT_MS);
    const sub: Subscription = proc.lines$.subscribe(({ line, run: r }: TaggedLine) => {
      if (line.t !== 'conn' || line.peer !== peer || (run !== undefined && r !== run)) return;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve({ ...line, at: performance.now() });
    });
  });
}

/** Runs one case: `restarts` clean restarts of one node of a pair. */
export async function measureRestarts(
  kind: RestartCase,
  restarts: number,
  progress: (text: string) => void,
): Promise<RestartResult> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-restart-'));
  const a = testIdentity(0x71);
  const b = testIdentity(0x72);
  // `waiter` has no URL for `dialer`; `dialer` has the waiter's URL.
  const waiter = createNodeProcess({
    name: 'waiter',
    identity: a,
    peers: [{ identity: b }],
    database: `file:${join(dir, 'waiter.db')}`,
    quiet: true,
  });
  try {
    await waiter.start();
    const dialer = createNodeProcess({
      name: 'dialer',
      identity: b,
      peers: [{ identity: a, url: waiter.url }],
      database: `file:${join(dir, 'dialer.db')}`,
      quiet: true,
    });
    try {
      const first = Promise.all([connectedAt(waiter, b.address, 1), connectedAt(dialer, a.address, 1)]);
      await dialer.start();
      await first;
      const [restarted, survivor] = kind === 'restarted-dials' ? [dialer, waiter] : [waiter, dialer];
      let survivorDowns = 0;
      let restartedDowns = 0;
      const downSub = survivor.lines$.subscribe(({ line }) => {
        if (line.t === 'health' && line.peer === restarted.address && line.to === 'down') survivorDowns++;
      });
      downSub.add(
        restarted.lines$.subscribe(({ line, run }) => {
          if (run > 1 && line.t === 'health' && line.peer === survivor.address && line.to === 'down') {
            restartedDowns++;
          }
        }),
      );
      const reconnectMs: number[] = [];
      const awayMs: number[] = [];
      try {
        for (let i = 0; i < restarts; i++) {
          const stoppedAt = performance.now();
          await restarted.stop();
          const run = restarted.runs + 1;
          const survivorSide = connectedAt(survivor, restarted.address, undefined);
          const restartedSide = connectedAt(restarted, survivor.address, run);
          // Taken in the line's own callback: the `conn` line may follow in the same chunk.
          let readyAt = Number.NaN;
          const readySub = restarted.lines$.subscribe(({ line, run: r }) => {
            if (line.t === 'ready' && r === run) readyAt = performance.now();
          });
          try {
            await restarted.start();
          } finally {
            readySub.unsubscribe();
          }
          const [mine, theirs] = await Promise.all([restartedSide, survivorSide]);
          if (mine.id !== theirs.id) throw new Error(`different connections: ${mine.id} / ${theirs.id}`);
          reconnectMs.push(Math.max(mine.at, theirs.at) - readyAt);
          awayMs.push(readyAt - stoppedAt);
        }
      } finally {
        downSub.unsubscribe();
      }
      const list = (values: number[]) => values.map((ms) => ms.toFixed(0)).join(' ');
      progress(`  ${kind}: away (ms): ${list(awayMs)}`);
      progress(`  ${kind}: reconnect after restart (ms): ${list(reconnectMs)}`);
      return { case: kind, reconnectMs, awayMs, survivorDowns, restartedDowns };
    } finally {
      await dialer.dispose();
    }
  } finally {
    await waiter.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
