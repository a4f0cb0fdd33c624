/**
 * The payments API on real nodes (loopback HTTP, a real database: SQLite files, or PostgreSQL
 * with `PARLEY_TEST_DB=postgresql`): list with filters and cursor paging, one payment with its
 * signed history, API keys. Every answer is checked against the node's OpenAPI document.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newApiKey } from '../../src/admin/api-keys.js';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type { VaspNode } from '../../src/node.js';
import { createApiKeyRepository } from '../../src/store/api-key-repository.js';
import { createNodeDatabase } from '../helpers/node-process.js';
import { nodeConfig, startNode, testIdentity, until } from '../helpers/nodes.js';
import { type Answer, checkedClient, rawRequest } from './checked-client.js';

const TOKEN = 'ad'.repeat(32);
type Summary = {
  referenceId: string;
  open: boolean;
  myRole: string;
  myStatus: string;
  theirStatus: string;
  updatedAt: string;
  peer: string;
};
type List = { payments: Summary[]; nextCursor?: string };

describe('payments API (real nodes, real HTTP)', () => {
  let a: VaspNode;
  let b: VaspNode;
  let client: ReturnType<typeof checkedClient>;
  let clientB: ReturnType<typeof checkedClient>;
  const refs: string[] = [];
  let between = 0;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    const dbA = await createNodeDatabase();
    const dbB = await createNodeDatabase();
    cleanups.push(
      () => dbA.dispose(),
      () => dbB.dispose(),
    );
    const ia = testIdentity(0x61);
    const ib = testIdentity(0x62);
    b = await startNode(nodeConfig(ib, dbB.url, [{ identity: ia }]));
    cleanups.push(() => b.close());
    a = await startNode(nodeConfig(ia, dbA.url, [{ identity: ib, url: b.url }]));
    cleanups.push(() => a.close());
    registerAdminRoutes(a, { token: TOKEN, version: '9.9.9' });
    // B answers no client by address (as a client off its machine would be): API keys only.
    registerAdminRoutes(b, { isTrusted: () => false });
    const doc = (
      await rawRequest(a.port, { path: '/admin/openapi.json', headers: { authorization: `Bearer ${TOKEN}` } })
    ).body as Parameters<typeof checkedClient>[1];
    client = checkedClient(a.port, doc, { authorization: `Bearer ${TOKEN}` });
    clientB = checkedClient(b.port, doc);
    await until([a, b], async () => a.channel(b.address).connection !== undefined);
    const pay = async (): Promise<string> => {
      const { status, body } = await client.call({
        method: 'POST',
        path: '/admin/pay?wait=1',
        body: { to: b.address, amount: 100 + refs.length, currency: 'XUS' },
      });
      expect(status).toBe(200);
      const ref = (body as { referenceId: string }).referenceId;
      refs.push(ref);
      return ref;
    };
    const allClosed = async () =>
      (await a.store.countOpenObjects(b.address)) === 0 && (await b.store.countOpenObjects(a.address)) === 0;
    await pay();
    await until([a, b], allClosed);
    // Just after the first payment's last change (the others finish a whole flow later).
    const first = (await client.call({ path: '/admin/payments' })).body as List;
    between = Date.parse(first.payments[0]!.updatedAt) + 1;
    await pay();
    await pay();
    await until([a, b], allClosed);
  }, 60_000);

  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const list = async (query: string): Promise<List> => {
    const answer = await client.call({ path: `/admin/payments${query}` });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return answer.body as List;
  };

  it('lists every payment, last changed first, from my side (sender, both ready_for_settlement)', async () => {
    const { payments, nextCursor } = await list('');
    expect(nextCursor).toBeUndefined();
    expect(payments.map((p) => p.referenceId).sort()).toEqual([...refs].sort());
    expect(payments.map((p) => p.updatedAt)).toEqual(
      payments
        .map((p) => p.updatedAt)
        .sort()
        .reverse(),
    );
    expect(payments.at(-1)?.referenceId).toBe(refs[0]);
    for (const p of payments) {
      expect(p).toMatchObject({
        peer: b.address,
        open: false,
        myRole: 'sender',
        myStatus: 'ready_for_settlement',
        theirStatus: 'ready_for_settlement',
      });
    }
  });

  it('filters by peer, state, status, my and their status, and time range', async () => {
    const ids = async (q: string) => (await list(q)).payments.map((p) => p.referenceId).sort();
    const all = [...refs].sort();
    expect(await ids(`?peer=${b.address}`)).toEqual(all);
    expect(await ids(`?peer=${a.address}`)).toEqual([]);
    expect(await ids('?state=closed')).toEqual(all);
    expect(await ids('?state=open')).toEqual([]);
    expect(await ids('?status=ready_for_settlement')).toEqual(all);
    expect(await ids('?status=abort')).toEqual([]);
    expect(await ids('?myStatus=ready_for_settlement&theirStatus=ready_for_settlement')).toEqual(all);
    expect(await ids('?theirStatus=needs_kyc_data')).toEqual([]);
    expect(await ids(`?since=${between}`)).toEqual([refs[1]!, refs[2]!].sort());
    expect(await ids(`?until=${new Date(between).toISOString()}`)).toEqual([refs[0]!]);
    expect(await ids('?until=1970-01-02T00:00:00Z')).toEqual([]);
  });

  it('pages with a cursor: every payment once, in order, the last page without nextCursor', async () => {
    const full = (await list('')).payments.map((p) => p.referenceId);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await list(`?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.payments.map((p) => p.referenceId));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== undefined && pages < 10);
    expect(seen).toEqual(full);
    expect(pages).toBe(3);
    // A status filter with a small page: same payments, pages may be short.
    const filtered: string[] = [];
    cursor = undefined;
    do {
      const page = await list(`?limit=2&myStatus=ready_for_settlement${cursor ? `&cursor=${cursor}` : ''}`);
      filtered.push(...page.payments.map((p) => p.referenceId));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(filtered).toEqual(full);
  });

  it('answers a bad query 400 HTTP_INVALID_QUERY naming each problem, plainly for an address', async () => {
    const bad = async (q: string): Promise<Answer> => {
      const answer = await client.call({ path: `/admin/payments${q}` });
      expect(answer.status).toBe(400);
      expect((answer.body as { error: string }).error).toBe('HTTP_INVALID_QUERY');
      return answer;
    };
    await bad('?limit=0');
    await bad('?limit=501');
    await bad('?state=maybe');
    await bad('?status=paid');
    await bad('?cursor=abc');
    await bad('?since=yesterday');
    await bad(`?since=${between}&until=${between}`);
    await bad('?colour=red');
    await bad('?limit=1&limit=2');
    const address = await bad('?peer=xyz1qqqq');
    expect((address.body as { message: string }).message).toContain(
      'not a Parley / LIP-5 address: expected lbr1',
    );
    expect((address.body as { message: string }).message).not.toContain('hrp');
    await client.call({ path: '/admin/payments/x?colour=red' }).then((r) => expect(r.status).toBe(400));
  });

  it('shows one payment: its object and every request and response JWS, the same as the peer logged', async () => {
    const ref = refs[1]!;
    const { status, body } = await client.call({ path: `/admin/payments/${encodeURIComponent(ref)}` });
    expect(status).toBe(200);
    const detail = body as {
      summary: Summary & { versionCount: number };
      payment: { reference_id: string; sender: { status: { status: string } } };
      history: Array<{
        cid: string;
        requestJws: string;
        responseJws: string;
        direction: string;
        status: string;
      }>;
      pending: unknown[];
    };
    expect(detail.payment.reference_id).toBe(ref);
    expect(detail.payment.sender.status.status).toBe('ready_for_settlement');
    expect(detail.pending).toEqual([]);
    const peerLog = await b.store.history(a.address, ref);
    expect(detail.history.map((c) => [c.cid, c.requestJws, c.responseJws])).toEqual(
      peerLog.map((c) => [c.cid, c.requestJws, c.responseJws]),
    );
    // Both directions: my create and updates, the peer's updates.
    expect(new Set(detail.history.map((c) => c.direction))).toEqual(new Set(['outbound', 'inbound']));
    expect(detail.history.filter((c) => c.status === 'success')).toHaveLength(detail.summary.versionCount);
    for (const c of detail.history) expect(c.requestJws.split('.')).toHaveLength(3);

    const unknown = await client.call({ path: '/admin/payments/no-such-payment' });
    expect(unknown.status).toBe(404);
    expect((unknown.body as { error: string }).error).toBe('PAYMENT_UNKNOWN');
    const otherPeer = await client.call({
      path: `/admin/payments/${encodeURIComponent(ref)}?peer=${a.address}`,
    });
    expect(otherPeer.status).toBe(404);
  });

  it('API keys: the secret once, hashed at rest, scopes enforced, usable from clients off the machine, revoked at once', async () => {
    // Made with the admin token on this machine; B refuses it (its clients are all "remote").
    const made = await client.call({
      method: 'POST',
      path: '/admin/api-keys',
      body: { name: 'back office', scopes: ['read'] },
    });
    expect(made.status).toBe(201);
    const { key, secret } = made.body as { key: { id: string; scopes: string[] }; secret: string };
    expect(key.scopes).toEqual(['read']);
    expect(secret).toMatch(/^pk_[0-9a-f]{12}_/);
    const listed = await client.call({ path: '/admin/api-keys' });
    expect(JSON.stringify(listed.body)).not.toContain(secret.split('_')[2]);
    // At rest: the SHA-256 of the secret part, never the secret.
    const row = await createApiKeyRepository(a.store).find(key.id);
    const secretPart = secret.slice(`pk_${key.id}_`.length);
    expect(row?.secretHash).toBe(createHash('sha256').update(secretPart).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(secretPart);

    const asKey = { authorization: `Bearer ${secret}` };
    expect((await client.call({ path: '/admin/payments', headers: asKey })).status).toBe(200);
    expect((await client.call({ path: '/admin/status', headers: asKey })).status).toBe(200);
    const noPay = await client.call({
      method: 'POST',
      path: '/admin/pay',
      headers: asKey,
      body: { to: b.address, amount: 1, currency: 'XUS' },
    });
    expect(noPay.status).toBe(403);
    expect((noPay.body as { error: string }).error).toBe('ADMIN_FORBIDDEN');
    const noAdmin = await client.call({
      method: 'POST',
      path: '/admin/api-keys',
      headers: asKey,
      body: { name: 'x', scopes: ['pay'] },
    });
    expect(noAdmin.status).toBe(403);
    const wrong = await client.call({
      path: '/admin/payments',
      headers: { authorization: `Bearer ${secret.slice(0, -2)}xx` },
    });
    expect(wrong.status).toBe(401);

    // B trusts no client address: without a key it refuses, with one of its own keys it answers.
    const refused = await clientB.call({ path: '/admin/payments' });
    expect(refused.status).toBe(403);
    expect((refused.body as { error: string }).error).toBe('ADMIN_FORBIDDEN');
    expect((await clientB.call({ path: '/admin/payments', headers: asKey })).status).toBe(401);

    const revoked = await client.call({ method: 'POST', path: `/admin/api-keys/${key.id}/revoke` });
    expect(revoked.status).toBe(200);
    expect((revoked.body as { revokedAt: string | null }).revokedAt).not.toBeNull();
    const after = await client.call({ path: '/admin/payments', headers: asKey });
    expect(after.status).toBe(401);
    expect((await client.call({ method: 'POST', path: '/admin/api-keys/000000000000/revoke' })).status).toBe(
      404,
    );
    const badBody = await client.call({
      method: 'POST',
      path: '/admin/api-keys',
      body: { name: '', scopes: ['admin'] },
    });
    expect(badBody.status).toBe(400);
  });

  it('a pay key starts payments from a client the node does not trust by address', async () => {
    // B's own key, made in its store (B's admin routes trust no client to make one).
    const made = newApiKey();
    await createApiKeyRepository(b.store).create({
      id: made.id,
      name: 'treasury',
      scopes: ['pay', 'read'],
      secretHash: made.secretHash,
    });
    const secret = made.credential;
    const paid = await clientB.call({
      method: 'POST',
      path: '/admin/pay',
      headers: { authorization: `Bearer ${secret}` },
      body: { to: a.address, amount: 7, currency: 'XUS' },
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(202);
    expect((paid.body as { peer: { state: string } }).peer.state).toBe('connected');
  });

  it('a restore asked for something that is not an address says what is wrong with it, and starts nothing', async () => {
    const typo = await client.call({ method: 'POST', path: '/admin/restore', body: { peer: 'lbr1nobody' } });
    expect(typo.status).toBe(400);
    expect(typo.body).toMatchObject({ error: 'BUSINESS_INVALID_INPUT' });
    expect((typo.body as { message: string }).message).toMatch(
      /^peer "lbr1nobody" is not a Parley \/ LIP-5 address/,
    );
    const extra = await client.call({
      method: 'POST',
      path: '/admin/restore',
      body: { peer: b.address, also: 1 },
    });
    expect(extra.status).toBe(400);
    expect((extra.body as { message: string }).message).toContain('nothing else');
    expect(a.sync(b.address).restoreStatus()).toBeUndefined();
  });
});
