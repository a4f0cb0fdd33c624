/**
 * Checks two nodes' databases against each other after a run (the processes have exited):
 * identical signed logs, linear version chains, nothing open, nothing left in the outbox.
 */
import { expect } from 'vitest';
import { openStore } from '../../src/store/index.js';
import type { NodeDatabase } from '../helpers/node-process.js';

/** One signed-log entry as stored. */
export interface LogRow {
  cid: string;
  direction: 'outbound' | 'inbound';
  ref: string;
  read: string | null;
  write: string;
  request: string;
  response: string;
  status: 'success' | 'failure';
  code: string | null;
}

interface VersionRow {
  ref: string;
  version: string;
  previous: string | null;
  payment: string;
}

export async function readSignedLog(db: NodeDatabase): Promise<LogRow[]> {
  return db.query<LogRow>(
    `SELECT cid, direction, reference_id AS ref, read_version AS read, write_version AS write,
            request_jws AS request, response_jws AS response, status, error_code AS code
       FROM command_log ORDER BY id`,
  );
}

async function readVersions(db: NodeDatabase): Promise<Map<string, VersionRow[]>> {
  const rows = await db.query<VersionRow>(
    `SELECT reference_id AS ref, version, previous_version AS previous, payment FROM object_version`,
  );
  const byRef = new Map<string, VersionRow[]>();
  for (const row of rows) byRef.set(row.ref, [...(byRef.get(row.ref) ?? []), row]);
  return byRef;
}

/** The version chain of one object, oldest first; fails when it is not one linear chain. */
function chain(rows: VersionRow[], ref: string): VersionRow[] {
  const byPrevious = new Map<string | null, VersionRow>();
  for (const row of rows) {
    expect(byPrevious.has(row.previous), `${ref}: two versions read ${row.previous}`).toBe(false);
    byPrevious.set(row.previous, row);
  }
  const out: VersionRow[] = [];
  let at = byPrevious.get(null);
  while (at) {
    out.push(at);
    at = byPrevious.get(at.version);
  }
  expect(out.length, `${ref}: versions do not form one chain from the create`).toBe(rows.length);
  return out;
}

export interface PairReport {
  /** Every object in the logs. */
  refs: Set<string>;
  /** Cids by outcome, as the logs hold them. */
  logA: LogRow[];
  logB: LogRow[];
}

/**
 * Asserts that the two databases (of A and B, on a channel with each other) hold the same
 * signed log byte for byte, each cid once; every object is one linear chain of versions, the
 * same on both sides, final, with both sides `ready_for_settlement` (unless `allowAbort`);
 * no outbox entry is left; `checkIntegrity()` is empty on both.
 */
export async function expectIdenticalSignedLogs(
  a: { db: NodeDatabase; peer: string },
  b: { db: NodeDatabase; peer: string },
): Promise<PairReport> {
  const [logA, logB] = await Promise.all([readSignedLog(a.db), readSignedLog(b.db)]);
  const cidsA = new Map(logA.map((r) => [r.cid, r]));
  const cidsB = new Map(logB.map((r) => [r.cid, r]));
  expect(cidsA.size, 'a cid is logged twice in A').toBe(logA.length);
  expect(cidsB.size, 'a cid is logged twice in B').toBe(logB.length);
  expect([...cidsA.keys()].sort()).toEqual([...cidsB.keys()].sort());
  for (const [cid, ra] of cidsA) {
    const rb = cidsB.get(cid)!;
    expect(rb.direction).toBe(ra.direction === 'outbound' ? 'inbound' : 'outbound');
    expect({ ...rb, direction: ra.direction }, `log entry ${cid}`).toEqual(ra);
  }

  const [versionsA, versionsB] = await Promise.all([readVersions(a.db), readVersions(b.db)]);
  const refs = new Set(logA.map((r) => r.ref));
  expect(new Set(versionsA.keys())).toEqual(refs);
  for (const ref of refs) {
    const chainA = chain(versionsA.get(ref) ?? [], ref);
    const chainB = chain(versionsB.get(ref) ?? [], ref);
    // Derived state: the same versions with the same objects (the JSON text may order keys
    // differently: the proposer stores the object it built, the other side the decoded one).
    const parsed = (rows: VersionRow[]) => rows.map((v) => ({ ...v, payment: JSON.parse(v.payment) }));
    expect(parsed(chainB)).toEqual(parsed(chainA));
    const successes = logA.filter((r) => r.ref === ref && r.status === 'success');
    expect(chainA.map((v) => v.version).sort()).toEqual(successes.map((r) => r.write).sort());
    const last = JSON.parse(chainA.at(-1)!.payment) as {
      sender: { status: { status: string } };
      receiver: { status: { status: string } };
    };
    expect([last.sender.status.status, last.receiver.status.status], `${ref} is not settled`).toEqual([
      'ready_for_settlement',
      'ready_for_settlement',
    ]);
  }

  for (const side of [a, b]) {
    const [outbox] = await side.db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM outbox');
    expect(Number(outbox!.n), 'outbox entries left').toBe(0);
    const store = await openStore({ url: side.db.url });
    try {
      expect(await store.checkIntegrity()).toEqual([]);
      expect(await store.countOpenObjects(side.peer)).toBe(0);
    } finally {
      await store.close();
    }
  }
  return { refs, logA, logB };
}
