/**
 * Two node processes settle payments while either of them is SIGKILLed at random moments and
 * restarted on the same database and port. Afterwards (both exited) the databases must agree:
 * every payment either side holds is complete on both, each cid is applied once, version chains
 * are linear, and every command a node reported as durably decided is in both signed logs.
 */
import { randomInt } from 'node:crypto';
import { merge } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ChildLine,
  createNodeDatabase,
  createNodeProcess,
  type NodeProcess,
  type TaggedLine,
  untilQuiet,
} from '../helpers/node-process.js';
import { testIdentity } from '../helpers/nodes.js';
import { expectIdenticalSignedLogs } from './signed-logs.js';

type CmdLine = Extract<ChildLine, { t: 'cmd' }>;

const PAYMENTS_PER_SIDE = 500;
const ROUNDS = 10;
const KILLS = 5;

/** Resolves after `count` more `cmd` lines from any of `procs`. */
function afterCommands(procs: NodeProcess[], count: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`only ${seen} of ${count} commands in ${timeoutMs} ms`));
    }, timeoutMs);
    const sub = merge(...procs.map((p) => p.lines$)).subscribe(({ line }) => {
      if (line.t !== 'cmd' || ++seen < count) return;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve();
    });
  });
}

describe('two node processes, either SIGKILLed at random moments', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('complete every payment, apply no cid twice and lose no acknowledged command', {
    timeout: 400_000,
  }, async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const [idA, idB] = [testIdentity(0x71), testIdentity(0x72)];
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

    const lines: TaggedLine[] = [];
    const sub = merge(a.lines$, b.lines$).subscribe((l) => lines.push(l));
    cleanups.push(() => sub.unsubscribe());

    // Payments go out in rounds; a kill lands after a random number of commands (so anywhere
    // in a create, an update, a commit or a reaction), with the other node still sending.
    const perRound = PAYMENTS_PER_SIDE / ROUNDS;
    const killRounds = new Set<number>();
    while (killRounds.size < KILLS) killRounds.add(randomInt(0, ROUNDS));
    const kills: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      a.request({ op: 'pay', to: b.address, count: perRound });
      b.request({ op: 'pay', to: a.address, count: perRound });
      if (!killRounds.has(round)) continue;
      await afterCommands([a, b], randomInt(1, 6 * perRound), 120_000);
      const victim = randomInt(0, 2) === 0 ? a : b;
      await victim.kill();
      kills.push(victim.name);
      await victim.start();
    }
    expect(kills).toHaveLength(KILLS);
    await untilQuiet([a, b], 180_000);

    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    const report = await expectIdenticalSignedLogs(
      { db: dbA, peer: idB.address },
      { db: dbB, peer: idA.address },
    );

    // No acknowledged command lost: every command a node reported as durably decided (the
    // sender's final outcome, the receiver's commit) is in both logs with that outcome.
    const cmds = lines.filter((l): l is TaggedLine & { line: CmdLine } => l.line.t === 'cmd');
    const logged = new Map(report.logA.map((r) => [r.cid, r.status]));
    for (const { line } of cmds) expect(logged.get(line.cid), `acknowledged ${line.cid}`).toBe(line.status);
    // No cid applied twice: each node reported each cid's commit at most once, across restarts
    // (a replay after a crash answers from the log and is not applied again).
    for (const node of ['A', 'B']) {
      const cids = cmds.filter((l) => l.node === node).map((l) => l.line.cid);
      expect(new Set(cids).size, `${node} applied a cid twice`).toBe(cids.length);
    }
    // Every payment whose create was acknowledged is complete (checked for all logged payments
    // above); a payment is lost only if its node was killed before the create was durable.
    const createdRefs = new Set(
      cmds.filter((l) => l.line.create && l.line.status === 'success').map((l) => l.line.ref),
    );
    for (const ref of createdRefs) expect(report.refs.has(ref)).toBe(true);
    expect(report.logA.every((r) => r.status === 'success')).toBe(true);
    expect(report.refs.size).toBeGreaterThan(2 * PAYMENTS_PER_SIDE - 2 * perRound * KILLS);
    expect(lines.filter(({ line }) => line.t === 'error')).toEqual([]);
  });
});
