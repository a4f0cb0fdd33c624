import { writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminOpenApi } from '../../src/admin/openapi.js';
import { isAdminClient, isLoopbackHostName, registerAdminRoutes } from '../../src/admin/routes.js';
import { type AdminTarget, adminRequest } from '../../src/cli/admin-client.js';
import { ParleyError } from '../../src/errors.js';
import { isLoopbackRequest } from '../../src/http/router.js';
import type { VaspNode } from '../../src/node.js';
import { encodeAddress } from '../../src/protocol/index.js';
import { answerProblems } from '../admin/checked-client.js';
import { nodeConfig, startNode, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { cli } from './helpers.js';

const ADMIN_DOC = adminOpenApi('0') as unknown as Parameters<typeof answerProblems>[0];

function rawRequest(
  port: number,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; body: unknown; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => {
          const answer = {
            status: res.statusCode ?? 0,
            body: text ? JSON.parse(text) : null,
            headers: res.headers,
          };
          // Every admin answer this file receives matches the OpenAPI document the node serves.
          const problems = answerProblems(ADMIN_DOC, options.method ?? 'GET', options.path, answer);
          if (problems.length > 0) reject(new Error(`not as documented: ${problems.join('; ')}`));
          else resolve(answer);
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A's admin token (`parley start` makes a new one per run). */
const TOKEN = 'c0ffee'.repeat(10);

const fakeRequest = (
  remoteAddress: string | undefined,
  headers: Record<string, string> = {},
): IncomingMessage => ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage;

// One pair of nodes for the whole file (starting a node migrates a fresh database, which takes
// seconds). The tests run in order: every refusal comes before the first accepted payment, so
// "nothing stored" is checked against an empty store.
describe('admin routes on a real node (loopback HTTP, SQLite files)', () => {
  let a: VaspNode;
  let b: VaspNode;
  let adminA: AdminTarget;
  let dbFileA: string;
  let configA: string;
  /** A raw request to A's admin routes, with A's token unless `headers` says otherwise. */
  const rawA = (options: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
  }) => rawRequest(a.port, { ...options, headers: { authorization: `Bearer ${TOKEN}`, ...options.headers } });
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeAll(async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const ia = testIdentity(0x51);
    const ib = testIdentity(0x52);
    b = await startNode(nodeConfig(ib, `file:${join(dir.path, 'b.db')}`, [{ identity: ia }]));
    cleanups.push(() => b.close());
    dbFileA = join(dir.path, 'a.db');
    a = await startNode(nodeConfig(ia, `file:${dbFileA}`, [{ identity: ib, url: b.url }]));
    cleanups.push(() => a.close());
    registerAdminRoutes(a, { token: TOKEN });
    registerAdminRoutes(b, { isTrusted: () => false });
    // A's config, for the CLI (which checks that the node answering is the config's).
    configA = join(dir.path, 'a.config.json');
    writeFileSync(configA, JSON.stringify(nodeConfig(ia, `file:${dbFileA}`, [], a.port)));
    adminA = { url: `http://127.0.0.1:${a.port}`, token: TOKEN };
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function nothingStored(): Promise<void> {
    expect(await a.store.countOpenObjects(b.address)).toBe(0);
    expect(await a.store.outbox(b.address)).toEqual([]);
    expect(a.channel(b.address).inflight).toBe(0);
    expect(await b.store.countOpenObjects(a.address)).toBe(0);
  }

  it('answers GET /admin/status with every channel: state, inflight, open objects, peer epoch, health', async () => {
    await until([a, b], async () => a.channel(b.address).connection !== undefined);
    const { status, body } = await adminRequest(adminA, 'GET', '/admin/status');
    expect(status).toBe(200);
    expect(body).toEqual({
      address: a.address,
      epoch: a.epoch,
      url: a.url,
      // Whether its store can write (docs/storage.md).
      store: { store: 'ok' },
      channels: [
        {
          peer: b.address,
          // No `peers[].name` configured: the address names it.
          name: b.address,
          state: 'connected',
          inflight: 0,
          // Where each command of mine in flight stands (none here).
          inflightStates: { unsent: 0, unanswered: 0, waiting: 0, unapplied: 0, oldestUnansweredMs: null },
          openObjects: 0,
          peerEpoch: b.epoch,
          // Shown when the node has a health monitor (src/health).
          ...('health' in a
            ? {
                health: {
                  state: expect.any(String),
                  rttMs: expect.toBeOneOf([null, expect.any(Number)]),
                  phi: expect.any(Number),
                },
              }
            : {}),
        },
      ],
    });
  });

  const other = encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(0x77) });
  it.each<[string, (a: VaspNode, b: VaspNode) => unknown]>([
    ['a missing amount', (_, b) => ({ to: b.address, currency: 'XUS' })],
    ['a zero amount', (_, b) => ({ to: b.address, amount: 0, currency: 'XUS' })],
    ['a fractional amount', (_, b) => ({ to: b.address, amount: 1.5, currency: 'XUS' })],
    ['an amount as text', (_, b) => ({ to: b.address, amount: '10', currency: 'XUS' })],
    ['an unsafe amount', (_, b) => ({ to: b.address, amount: 2 ** 60, currency: 'XUS' })],
    ['an empty currency', (_, b) => ({ to: b.address, amount: 1, currency: '' })],
    ['a currency with spaces', (_, b) => ({ to: b.address, amount: 1, currency: 'X U S' })],
    ['a bad address', () => ({ to: 'lbr1nope', amount: 1, currency: 'XUS' })],
    ['an unknown peer', () => ({ to: other, amount: 1, currency: 'XUS' })],
    ['the node itself', (a) => ({ to: a.address, amount: 1, currency: 'XUS' })],
    [
      'a zero subaddress',
      (_, b) => ({ to: b.address, amount: 1, currency: 'XUS', toSubaddressHex: '0'.repeat(16) }),
    ],
    [
      'a short subaddress',
      (_, b) => ({ to: b.address, amount: 1, currency: 'XUS', fromSubaddressHex: 'ab' }),
    ],
    ['an unknown member', (_, b) => ({ to: b.address, ammount: 1, amount: 1, currency: 'XUS' })],
    ['an array', () => []],
    ['null', () => null],
  ])('refuses %s with 400 BUSINESS_INVALID_INPUT and stores nothing', async (_, body) => {
    const { status, body: answer } = await adminRequest(adminA, 'POST', '/admin/pay?wait=1', body(a, b));
    expect(status).toBe(400);
    expect((answer as { error: string }).error).toBe('BUSINESS_INVALID_INPUT');
    await nothingStored();
  });

  it('refuses a body that is not JSON (400), not application/json (415) or too large (413)', async () => {
    const post = (headers: Record<string, string>, body: string) =>
      rawA({ method: 'POST', path: '/admin/pay', headers, body });
    const notJson = await post({ 'content-type': 'application/json' }, '{"to":');
    expect(notJson.status).toBe(400);
    expect((notJson.body as { error: string }).error).toBe('BUSINESS_INVALID_INPUT');
    const plain = await post(
      { 'content-type': 'text/plain' },
      JSON.stringify({ to: b.address, amount: 1, currency: 'X' }),
    );
    expect(plain.status).toBe(415);
    const large = await post(
      { 'content-type': 'application/json' },
      `{"description":"${'x'.repeat(70_000)}"}`,
    );
    expect(large.status).toBe(413);
    await nothingStored();
  });

  it('answers 405 to the wrong method and 404 to an unknown admin path', async () => {
    expect((await rawA({ path: '/admin/pay' })).status).toBe(405);
    expect((await rawA({ method: 'POST', path: '/admin/status' })).status).toBe(405);
    expect((await rawA({ path: '/admin/nope' })).status).toBe(404);
  });

  it('refuses (403) a request whose Host or Origin is another site, as a DNS-rebinding page would send', async () => {
    const evilHost = await rawA({
      path: '/admin/status',
      headers: { host: `evil.example:${a.port}` },
    });
    expect(evilHost.status).toBe(403);
    const evilOrigin = await rawA({
      method: 'POST',
      path: '/admin/pay',
      headers: { origin: 'http://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ to: b.address, amount: 1, currency: 'XUS' }),
    });
    expect(evilOrigin.status).toBe(403);
    await nothingStored();
    const local = await rawA({
      path: '/admin/status',
      headers: { host: `localhost:${a.port}` },
    });
    expect(local.status).toBe(200);
  });

  it('refuses (403) every client the trust predicate rejects, before reading the body', async () => {
    const { status } = await adminRequest(`http://127.0.0.1:${b.port}`, 'POST', '/admin/pay', {
      to: a.address,
      amount: 1,
      currency: 'XUS',
    });
    expect(status).toBe(403);
    expect((await adminRequest(`http://127.0.0.1:${b.port}`, 'GET', '/admin/status')).status).toBe(403);
    await nothingStored();
  });
  it('refuses (401 ADMIN_UNAUTHORIZED) a request without the token or with another, before reading the body', async () => {
    const pay = JSON.stringify({ to: b.address, amount: 1, currency: 'XUS' });
    for (const authorization of [
      '',
      'Bearer',
      `Bearer ${TOKEN}0`,
      `Basic ${TOKEN}`,
      `Bearer ${'0'.repeat(60)}`,
    ]) {
      const headers = { authorization, 'content-type': 'application/json' };
      const refused = await rawA({ method: 'POST', path: '/admin/pay', headers, body: pay });
      expect(refused).toMatchObject({ status: 401, body: { error: 'ADMIN_UNAUTHORIZED' } });
      expect((await rawA({ path: '/admin/status', headers: { authorization } })).status).toBe(401);
    }
    expect((await adminRequest(adminA.url, 'GET', '/admin/status')).status).toBe(401);
    expect(
      (await rawA({ path: '/admin/status', headers: { authorization: `bearer  ${TOKEN}` } })).status,
    ).toBe(200);
    await nothingStored();
  });

  it('refuses (503 STORE_UNAVAILABLE, Retry-After) a payment it cannot store, with or without ?wait, and stores nothing', async () => {
    // Another process holds the database's write lock: the create cannot reach the outbox, so
    // the payment must be refused (retryable), never acknowledged.
    const holder = new Database(dbFileA);
    try {
      holder.exec('BEGIN IMMEDIATE');
      const headers = { 'content-type': 'application/json' };
      const body = JSON.stringify({ to: b.address, amount: 3, currency: 'XUS' });
      // `parley pay` (no --wait) exits 0 only on a durable acknowledgement.
      const payArgs = ['--to', b.address, '--amount', '4', '--currency', 'XUS', '--url', adminA.url];
      const config = configA;
      const [answers, byCli] = await Promise.all([
        Promise.all(
          ['/admin/pay', '/admin/pay?wait=1'].map((path) => rawA({ method: 'POST', path, headers, body })),
        ),
        cli(['pay', '--config', config, ...payArgs], { env: { PARLEY_ADMIN_TOKEN: TOKEN } }),
      ]);
      for (const answer of answers) {
        expect(answer).toMatchObject({ status: 503, body: { error: 'STORE_UNAVAILABLE' } });
        expect(answer.headers['retry-after']).toBe('1');
      }
      expect(byCli.code).toBe(1);
      expect(byCli.err).toContain('STORE_UNAVAILABLE');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    await nothingStored();
  });

  it('starts a payment on POST /admin/pay?wait=1 and answers the create command outcome', async () => {
    const { status, body } = await adminRequest(adminA, 'POST', '/admin/pay?wait=1', {
      to: b.address,
      amount: 250,
      currency: 'XUS',
      description: 'invoice 7',
      toSubaddressHex: '00000000000000ab',
    });
    expect(status).toBe(200);
    const answer = body as { referenceId: string; outcome: { status: string; cid: string } };
    expect(answer.outcome.status).toBe('success');
    expect(answer.referenceId.startsWith(`${a.address}_`)).toBe(true);
    const versions = await b.store.versions(a.address, answer.referenceId);
    const first = JSON.parse(versions[0]!.payment);
    expect(first.action).toMatchObject({ amount: 250, currency: 'XUS' });
    expect(first.description).toBe('invoice 7');
  });

  it('answers POST /admin/pay at once with 202 and the reference id without ?wait', async () => {
    const { status, body } = await adminRequest(adminA, 'POST', '/admin/pay', {
      to: b.address,
      amount: 1,
      currency: 'XUS',
    });
    expect(status).toBe(202);
    const { referenceId, cid } = body as { referenceId: string; cid: string };
    // The 202 comes once the create is durable in the outbox, and names it.
    expect(cid).toMatch(/^[0-9a-f]{32}$/);
    await until([a, b], async () => (await b.store.head(a.address, referenceId)) !== undefined);
  });

  it('answers ?wait=1 with 202 durable when the create is stored but the channel stops being served here before its outcome', async () => {
    // Another replica takes the channel over the moment the create is durable (before it is sent).
    // Earlier payments first settle, so that the only command queued from here is this create.
    const channel = a.channel(b.address);
    await until(
      [a, b],
      async () =>
        channel.inflight === 0 &&
        (await a.store.countOpenObjects(b.address)) === 0 &&
        (await b.store.countOpenObjects(a.address)) === 0,
    );
    const sub = channel.events$.subscribe((event) => {
      if (event.type !== 'command_queued') return;
      sub.unsubscribe();
      channel.suspend(new ParleyError('STORE_LEASE_LOST', 'another replica took the channel'));
    });
    const { status, body } = await adminRequest(adminA, 'POST', '/admin/pay?wait=1', {
      to: b.address,
      amount: 2,
      currency: 'XUS',
    });
    // Accepted (a retry would pay twice), durable, outcome unknown here: never a 4xx/5xx.
    expect(status).toBe(202);
    const answer = body as { referenceId: string; cid: string; durable: boolean; error: string };
    expect(answer).toMatchObject({ durable: true, error: 'STORE_LEASE_LOST' });
    expect((await a.store.outbox(b.address)).map((o) => o.cid)).toContain(answer.cid);
    // Served here again: the create goes out and completes.
    channel.resume();
    await until([a, b], async () => (await b.store.head(a.address, answer.referenceId)) !== undefined);
  });
});

describe('the admin client predicate', () => {
  it('trusts loopback sockets only', () => {
    for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) {
      expect(isLoopbackRequest(fakeRequest(address)), address).toBe(true);
      expect(isAdminClient(fakeRequest(address)), address).toBe(true);
    }
    for (const address of ['10.0.0.1', '192.168.1.20', '::ffff:10.0.0.1', 'fe80::1', '', undefined]) {
      expect(isAdminClient(fakeRequest(address)), String(address)).toBe(false);
    }
  });

  it('refuses a loopback socket that names another site in Host or Origin, or a null Origin', () => {
    expect(isAdminClient(fakeRequest('127.0.0.1', { host: 'evil.example:7100' }))).toBe(false);
    expect(isAdminClient(fakeRequest('127.0.0.1', { host: '127.0.0.1.evil.example' }))).toBe(false);
    expect(isAdminClient(fakeRequest('127.0.0.1', { origin: 'https://evil.example' }))).toBe(false);
    expect(isAdminClient(fakeRequest('127.0.0.1', { origin: 'null' }))).toBe(false);
    expect(
      isAdminClient(fakeRequest('127.0.0.1', { host: '[::1]:7100', origin: 'http://localhost:3000' })),
    ).toBe(true);
  });

  it('recognises loopback host names with or without a port or scheme', () => {
    for (const name of [
      'localhost',
      'localhost:1',
      '127.0.0.1:7100',
      '[::1]:7100',
      '[::1]',
      'http://127.0.0.1:9',
    ]) {
      expect(isLoopbackHostName(name), name).toBe(true);
    }
    for (const name of [
      'example.com',
      '10.0.0.1:7100',
      '[fe80::1]:1',
      'localhost.evil.example',
      '1270.0.0.1',
    ]) {
      expect(isLoopbackHostName(name), name).toBe(false);
    }
  });
});
