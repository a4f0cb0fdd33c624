/**
 * Acknowledged means durable, for `POST /admin/pay` without `?wait`, with real node processes:
 * a `202` is given only once the create is in the outbox, so a SIGKILL right after it loses
 * nothing. Two nodes, A pays B; A is killed as soon as the last `202` of a burst arrives, or by
 * the test-only failpoint right after it wrote its Nth acknowledgement (the worst moment: the
 * answer is out, and nothing else ran). After every kill, A's database (read while A is dead)
 * must hold every acknowledged payment, in its outbox or its command log; once A is back, every
 * one of them ends final on both sides.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { KILL_AFTER_ACKS_ENV } from '../../src/admin/ack-failpoint.js';
import {
  createNodeDatabase,
  createNodeProcess,
  type NodeDatabase,
  type NodeProcess,
  untilQuiet,
} from '../helpers/node-process.js';
import { type TestIdentity, testIdentity } from '../helpers/nodes.js';

const BURST = 100;
const ROUNDS = 3;
/** The failpoint kills A right after this many acknowledgements (mid-burst). */
const KILL_AFTER = 50;

/** One answer to `POST /admin/pay`, or how the request failed (the node died under it). */
type PayAnswer =
  | { status: number; body: { referenceId?: string; cid?: string; error?: string } }
  | { failed: string };

/** `POST /admin/pay` on a fresh connection (a dying node must not take other requests with it). */
function postPay(port: number, to: string, amount: number): Promise<PayAnswer> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/admin/pay',
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        res.on('error', (err: NodeJS.ErrnoException) => resolve({ failed: err.code ?? err.message }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ failed: err.code ?? err.message }));
    req.end(JSON.stringify({ to, amount, currency: 'TIK' }));
  });
}

/**
 * `count` concurrent payments; `onAnswered` runs synchronously as the last answer arrives.
 * Returns the reference ids answered `202`, and every other answer.
 */
async function burst(
  payer: NodeProcess,
  to: string,
  count: number,
  onAnswered: () => void = () => undefined,
): Promise<{ acked: string[]; others: PayAnswer[] }> {
  let answered = 0;
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      postPay(payer.port, to, 1 + i).then((answer) => {
        if (++answered === count) onAnswered();
        return answer;
      }),
    ),
  );
  const acked: string[] = [];
  const others: PayAnswer[] = [];
  for (const answer of answers) {
    if ('status' in answer && answer.status === 202) {
      expect(answer.body.cid, 'a 202 names the durable create').toMatch(/^[0-9a-f]{32}$/);
      acked.push(answer.body.referenceId!);
    } else others.push(answer);
  }
  return { acked, others };
}

/** Reference ids in the outbox or the command log of a database no running node holds. */
async function durableRefs(db: NodeDatabase): Promise<Set<string>> {
  const rows = await db.query<{ ref: string }>(
    'SELECT reference_id AS ref FROM outbox UNION SELECT reference_id AS ref FROM command_log',
  );
  return new Set(rows.map((r) => r.ref));
}

async function outboxRefs(db: NodeDatabase): Promise<Set<string>> {
  const rows = await db.query<{ ref: string }>('SELECT reference_id AS ref FROM outbox');
  return new Set(rows.map((r) => r.ref));
}

/** Fails unless every ref is in the database's command log and its object is closed (final). */
async function expectFinal(db: NodeDatabase, refs: readonly string[], side: string): Promise<void> {
  const logged = new Set(
    (await db.query<{ ref: string }>('SELECT DISTINCT reference_id AS ref FROM command_log')).map(
      (r) => r.ref,
    ),
  );
  const heads = new Map(
    (await db.query<{ ref: string; open: unknown }>('SELECT reference_id AS ref, open FROM object_head')).map(
      (r) => [r.ref, Number(r.open)],
    ),
  );
  const missing = refs.filter((ref) => !logged.has(ref));
  const open = refs.filter((ref) => heads.get(ref) !== 0);
  expect(missing, `acknowledged payments missing from ${side}'s log`).toEqual([]);
  expect(open, `acknowledged payments not final at ${side}`).toEqual([]);
}

describe('POST /admin/pay acknowledges a payment only once it is durable', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A (admin routes on, `env` for its runs) dialing B; both started. */
  async function pair(
    bytes: [number, number],
    env?: Record<string, string>,
  ): Promise<{ a: NodeProcess; b: NodeProcess; dbA: NodeDatabase; dbB: NodeDatabase; idB: TestIdentity }> {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const [idA, idB] = [testIdentity(bytes[0]), testIdentity(bytes[1])];
    const b = createNodeProcess({ name: 'B', identity: idB, peers: [{ identity: idA }], database: dbB.url });
    cleanups.push(b.dispose);
    await b.start();
    const a = createNodeProcess({
      name: 'A',
      identity: idA,
      peers: [{ identity: idB, url: b.url }],
      database: dbA.url,
      admin: true,
      ...(env ? { env } : {}),
    });
    cleanups.push(a.dispose);
    await a.start();
    return { a, b, dbA, dbB, idB };
  }

  /** Once A is back: everything settles, both stop, and every ref is final on both sides. */
  async function expectAllFinal(
    { a, b, dbA, dbB }: { a: NodeProcess; b: NodeProcess; dbA: NodeDatabase; dbB: NodeDatabase },
    refs: string[],
  ): Promise<void> {
    await untilQuiet([a, b], 180_000);
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    await expectFinal(dbA, refs, 'A');
    await expectFinal(dbB, refs, 'B');
  }

  it(`SIGKILLed as the last 202 of a burst of ${BURST} arrives, loses no acknowledged payment (${ROUNDS} rounds)`, {
    timeout: 400_000,
  }, async () => {
    const nodes = await pair([0xa1, 0xa2]);
    const { a, b, dbA } = nodes;
    const acked: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const result = await burst(a, b.address, BURST, () => void a.kill());
      await a.kill();
      expect(result.others, `round ${round}: every payment is acknowledged`).toEqual([]);
      const durable = await durableRefs(dbA);
      expect(
        result.acked.filter((ref) => !durable.has(ref)),
        `round ${round}: acknowledged, not durable`,
      ).toEqual([]);
      acked.push(...result.acked);
      await a.start();
    }
    await expectAllFinal(nodes, acked);
  });

  it(`killed by the failpoint right after its ${KILL_AFTER}th acknowledgement, has every acknowledged payment`, {
    timeout: 400_000,
  }, async () => {
    const nodes = await pair([0xa3, 0xa4], { [KILL_AFTER_ACKS_ENV]: String(KILL_AFTER) });
    const { a, b, dbA } = nodes;
    const acked: string[] = [];
    for (let round = 0; round < 2; round++) {
      const result = await burst(a, b.address, BURST);
      // The failpoint killed A; the requests it had not answered failed with it.
      await a.kill();
      expect(a.running).toBe(false);
      expect(result.acked.length).toBeGreaterThan(0);
      expect(result.acked.length).toBeLessThanOrEqual(KILL_AFTER);
      for (const other of result.others) expect(other).toHaveProperty('failed');
      const durable = await durableRefs(dbA);
      expect(
        result.acked.filter((ref) => !durable.has(ref)),
        `round ${round}: acknowledged, not durable`,
      ).toEqual([]);
      acked.push(...result.acked);
      await a.start();
    }
    await expectAllFinal(nodes, acked);
  });

  it('acknowledges with the peer stopped: the 202 waits for the disk, not for the peer', {
    timeout: 300_000,
  }, async () => {
    const nodes = await pair([0xa5, 0xa6]);
    const { a, b, dbA } = nodes;
    expect(await b.stop()).toBe(0);
    const result = await burst(a, b.address, 20);
    expect(result.others).toEqual([]);
    await a.kill();
    const queued = await outboxRefs(dbA);
    expect(result.acked.filter((ref) => !queued.has(ref))).toEqual([]);
    await b.start();
    await a.start();
    await expectAllFinal(nodes, result.acked);
  });
});
