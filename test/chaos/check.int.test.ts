/**
 * The chaos run's invariant checker (`scripts/chaos/check.ts`) on real databases: two nodes
 * settle a few payments over a real socket, stop, and the checker finds them consistent; then
 * each way a database can be wrong (an acknowledged payment gone, a signed-log entry changed, a
 * version missing, an object left open, a command left queued) is made on copies, and the
 * checker must name it.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Acknowledged,
  type CheckedNode,
  checkInvariants,
  notDurable,
  type Wipe,
} from '../../scripts/chaos/check.js';
import type { VaspNode } from '../../src/node.js';
import { nodeConfig, startNode, tempDir, testIdentity, until } from '../helpers/nodes.js';

const PAYMENTS = 6;

describe('the chaos invariant checker', () => {
  const dir = tempDir();
  const idA = testIdentity(0x61);
  const idB = testIdentity(0x62);
  const acked: Acknowledged[] = [];
  let copies = 0;

  beforeAll(async () => {
    const b = await startNode(nodeConfig(idB, `file:${join(dir.path, 'b.db')}`, [{ identity: idA }]));
    const a = await startNode(
      nodeConfig(idA, `file:${join(dir.path, 'a.db')}`, [{ identity: idB, url: b.url }]),
    );
    try {
      for (let i = 0; i < PAYMENTS; i++) {
        const [from, to, name] = i % 2 === 0 ? [a, b, 'a'] : [b, a, 'b'];
        const started = from.pay({ to: to.address, amount: 100 + i, currency: 'XUS' });
        await firstValueFrom(started.outcome$);
        acked.push({ ref: started.referenceId, from: name, to: name === 'a' ? 'b' : 'a', at: Date.now() });
      }
      const idle = async (x: VaspNode, y: VaspNode) =>
        (await x.store.countOpenObjects(y.address)) === 0 && x.channel(y.address).inflight === 0;
      await until([a, b], async () => (await idle(a, b)) && (await idle(b, a)));
    } finally {
      await a.close();
      await b.close();
    }
  });
  afterAll(() => dir.dispose());

  /** Copies of both databases (the originals stay clean), with a wipe time per node. */
  function copy(wipes: { a?: Wipe[]; b?: Wipe[] } = {}): CheckedNode[] {
    copies += 1;
    return (['a', 'b'] as const).map((name) => {
      const dbPath = join(dir.path, `${name}-${copies}.db`);
      copyFileSync(join(dir.path, `${name}.db`), dbPath);
      const id = name === 'a' ? idA : idB;
      return { name, address: id.address, dbPath, wipes: wipes[name] ?? [] };
    });
  }

  function edit(node: CheckedNode, sql: string, ...params: unknown[]): void {
    const db = new Database(node.dbPath);
    try {
      db.prepare(sql).run(...params);
    } finally {
      db.close();
    }
  }

  const kinds = (nodes: CheckedNode[], list: Acknowledged[] = acked) =>
    checkInvariants(nodes, list).violations.map((v) => v.invariant);

  it('finds nothing wrong with the databases of a clean run', () => {
    const result = checkInvariants(copy(), acked);
    expect(result.violations).toEqual([]);
    expect(result.stats.acknowledgedOnBoth).toBe(PAYMENTS);
    expect(result.stats.objects).toBe(PAYMENTS);
  });

  it('an acknowledged payment on neither node: ack_lost (unless its sender was wiped after it)', () => {
    const ghost: Acknowledged = {
      ref: `${acked[0]!.ref.slice(0, -4)}beef`,
      from: 'a',
      to: 'b',
      at: Date.now(),
    };
    expect(kinds(copy(), [...acked, ghost])).toEqual(['ack_lost']);
    const result = checkInvariants(copy({ a: [{ at: Date.now() + 1000 }] }), [ghost]);
    expect(result.violations).toEqual([]);
    expect(result.stats.acknowledgedLostWithWipe).toBe(1);
  });

  it('an object gone from one node: ack_missing and object_missing, unless a wipe after its last command explains it', () => {
    const nodes = copy();
    const ref = acked[0]!.ref;
    for (const table of ['object_head', 'object_version', 'command_log']) {
      edit(nodes[1]!, `DELETE FROM ${table} WHERE reference_id = ?`, ref);
    }
    expect(kinds(nodes).sort()).toEqual(['ack_missing', 'object_missing']);
    // B back from a wipe after the object's last command: a wipe does not restore closed objects.
    const wiped = nodes.map((n) =>
      n.name === 'b' ? { ...n, wipes: [{ at: Date.now(), back: Date.now() }] } : n,
    );
    const result = checkInvariants(wiped, acked);
    expect(result.violations).toEqual([]);
    expect(result.stats.acknowledgedOnSurvivorOnly).toBe(1);
    // Back before it: the object moved after the wiped node came back, so it must have it.
    const early = nodes.map((n) => (n.name === 'b' ? { ...n, wipes: [{ at: 0, back: 1 }] } : n));
    expect(kinds(early).sort()).toEqual(['ack_missing', 'object_missing']);
  });

  it('a signed-log entry with other bytes on one node: log_differs', () => {
    const nodes = copy();
    edit(
      nodes[1]!,
      `UPDATE command_log SET response_jws = response_jws || 'x'
        WHERE id = (SELECT MAX(id) FROM command_log WHERE reference_id = ?)`,
      acked[1]!.ref,
    );
    expect(kinds(nodes)).toEqual(['log_differs']);
  });

  it('a signed-log entry on one node only: log_differs', () => {
    const nodes = copy();
    const ref = acked[2]!.ref;
    const db = new Database(nodes[0]!.dbPath);
    try {
      const row = db
        .prepare('SELECT * FROM command_log WHERE reference_id = ? ORDER BY id LIMIT 1')
        .get(ref) as Record<string, unknown>;
      db.prepare(
        `INSERT INTO command_log (peer, cid, direction, reference_id, read_version, write_version,
                                  request_jws, response_jws, status, error_code, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'failure', 'stale', ?)`,
      ).run(
        row['peer'],
        `${String(row['cid'])}-extra`,
        row['direction'],
        ref,
        row['write_version'],
        `${String(row['write_version'])}-x`,
        row['request_jws'],
        row['response_jws'],
        row['created_at'],
      );
    } finally {
      db.close();
    }
    expect(kinds(nodes)).toEqual(['log_differs']);
  });

  it('a version missing from a chain (a gap): chain', () => {
    const nodes = copy();
    edit(
      nodes[0]!,
      `DELETE FROM object_version WHERE reference_id = ? AND previous_version IS NULL`,
      acked[3]!.ref,
    );
    expect(kinds(nodes)).toContain('chain');
  });

  it('an object still open once quiet: not_final; a command left in the outbox: outbox', () => {
    const nodes = copy();
    edit(nodes[0]!, 'UPDATE object_head SET open = 1 WHERE reference_id = ?', acked[4]!.ref);
    const db = new Database(nodes[1]!.dbPath);
    try {
      db.prepare(
        `INSERT INTO outbox (peer, cid, reference_id, read_version, write_version, request_jws, created_at, attempts)
         SELECT peer, cid || '-again', reference_id, read_version, write_version, request_jws, created_at, 0
           FROM command_log WHERE reference_id = ? LIMIT 1`,
      ).run(acked[5]!.ref);
    } finally {
      db.close();
    }
    expect(kinds(nodes).sort()).toEqual(['not_final', 'outbox']);
  });

  it('at a SIGKILL: an acknowledged payment in neither the log nor the outbox of its sender is not durable', () => {
    const [a] = copy();
    const mine = acked.filter((p) => p.from === 'a').map((p) => p.ref);
    expect(notDurable(a!.dbPath, mine)).toEqual([]);
    // Only in the outbox (sent, not yet answered) counts as durable.
    const db = new Database(a!.dbPath);
    try {
      db.prepare(
        `INSERT INTO outbox (peer, cid, reference_id, read_version, write_version, request_jws, created_at, attempts)
         SELECT peer, cid || '-queued', reference_id || '-queued', read_version, write_version, request_jws, created_at, 0
           FROM command_log WHERE reference_id = ? LIMIT 1`,
      ).run(mine[0]);
    } finally {
      db.close();
    }
    const ghost = `${mine[0]!}-gone`;
    expect(notDurable(a!.dbPath, [...mine, `${mine[0]!}-queued`, ghost])).toEqual([ghost]);
  });
});
