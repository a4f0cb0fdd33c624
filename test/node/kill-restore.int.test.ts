/**
 * A closed-object restore (PROTOCOL.md §7.6) survives a SIGKILL of either side half way: W (two
 * processes: W and its peer P) settles payments, loses its database and comes back; P sees
 * `peer_state_lost` and leads the restore at a slow pace; one of them is killed once part of it
 * is done and started again on its database. The restore resumes from P's persisted cursor (its
 * counts never go back) and completes; both databases then hold the same signed log.
 */
import { merge } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ChildLine,
  createNodeProcess,
  nodeTestEngine,
  type TaggedLine,
  untilQuiet,
  waitForLine,
} from '../helpers/node-process.js';
import { testIdentity } from '../helpers/nodes.js';
import { createStoreFixture } from '../helpers/store.js';
import { expectIdenticalSignedLogs } from './signed-logs.js';

type RestoreLine = Extract<ChildLine, { t: 'restore' }>;

const PAYMENTS = 100;
/** P's restore pace: its batches of 50 start 2 s apart, so the kill lands between them. */
const PACE = { PARLEY_SYNC_RESTORE_OBJECTS_PER_S: '25' };

const isRestore = (line: ChildLine): line is RestoreLine => line.t === 'restore' && line.role === 'leader';

describe(`a restore with either side SIGKILLed half way (${nodeTestEngine()})`, () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  for (const victim of ['P, the leader', 'W, the restored node'] as const) {
    it(`resumes from the cursor after ${victim} is killed and restarted, and completes`, {
      timeout: 420_000,
    }, async () => {
      const [dbW, dbP] = [
        await createStoreFixture(nodeTestEngine()),
        await createStoreFixture(nodeTestEngine()),
      ];
      cleanups.push(dbW.dispose, dbP.dispose);
      const [idW, idP] = [testIdentity(0x61), testIdentity(0x62)];
      const p = createNodeProcess({
        name: 'P',
        identity: idP,
        peers: [{ identity: idW }],
        database: dbP.url,
        env: PACE,
      });
      cleanups.push(p.dispose);
      await p.start();
      const w = createNodeProcess({
        name: 'W',
        identity: idW,
        peers: [{ identity: idP, url: p.url }],
        database: dbW.url,
      });
      cleanups.push(w.dispose);
      await w.start();

      const batch = waitForLine(w.lines$, (l): l is ChildLine => l.t === 'batch', 120_000, 'the payments');
      w.request({ op: 'batch', id: 'closed', to: p.address, count: PAYMENTS, until: 'settled' });
      await batch;
      await untilQuiet([w, p], 60_000);

      // W loses its database and comes back: P leads the restore.
      await w.stop();
      await dbW.wipe();
      const lines: TaggedLine[] = [];
      const sub = merge(w.lines$, p.lines$).subscribe((l) => lines.push(l));
      cleanups.push(() => sub.unsubscribe());
      const partWay = waitForLine(
        p.lines$,
        (l): l is RestoreLine => isRestore(l) && l.state === 'running' && l.moved > 0,
        120_000,
        'restore progress',
      );
      await w.start();
      const before = await partWay;
      expect(before.moved).toBeLessThan(PAYMENTS);

      const killed = victim.startsWith('P') ? p : w;
      const survivor = killed === p ? w : p;
      const stopped = waitForLine(
        survivor.lines$,
        (l): l is Extract<ChildLine, { t: 'restore' }> => l.t === 'restore' && l.state === 'waiting',
        60_000,
        'the restore waiting on the survivor',
      );
      await killed.kill();
      // The survivor's /healthz lists the restore that waits for the peer, and is not `ok`.
      const waiting = await stopped;
      const health = (await (await fetch(`http://127.0.0.1:${survivor.port}/healthz`)).json()) as {
        status: string;
        restores?: Array<{ peer: string; role: string; state: string }>;
      };
      expect(health.status).not.toBe('ok');
      expect(health.restores).toEqual([
        expect.objectContaining({ peer: killed.address, role: waiting.role, state: 'waiting' }),
      ]);
      const [row] = await dbP.query<{ after: string | null; moved: number | string; finished_at: unknown }>(
        `SELECT "after", moved, finished_at FROM restore_cursor WHERE peer = '${idW.address}'`,
      );
      expect(row!.finished_at).toBeNull();
      expect(Number(row!.moved)).toBeGreaterThan(0);
      const seen = lines.length;
      const done = waitForLine(
        p.lines$,
        (l): l is RestoreLine => isRestore(l) && l.state === 'finished',
        180_000,
        'the end of the restore',
      );
      await killed.start();
      const end = await done;

      // Resumed, not started again: no count after the kill is below the saved cursor's.
      const after = lines.slice(seen).flatMap(({ line }) => (isRestore(line) ? [line] : []));
      expect(after.length).toBeGreaterThan(0);
      for (const l of after) expect(l.moved).toBeGreaterThanOrEqual(Number(row!.moved));
      expect(end.moved).toBeLessThanOrEqual(PAYMENTS);

      expect(await p.stop()).toBe(0);
      expect(await w.stop()).toBe(0);
      const [cursor] = await dbP.query<{ finished_at: unknown }>(
        `SELECT finished_at FROM restore_cursor WHERE peer = '${idW.address}'`,
      );
      expect(cursor!.finished_at).not.toBeNull();
      const report = await expectIdenticalSignedLogs(
        { db: dbW, peer: idP.address },
        { db: dbP, peer: idW.address },
      );
      expect(report.refs.size).toBe(PAYMENTS);
    });
  }
});
