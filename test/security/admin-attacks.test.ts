/**
 * Admin routes under attack on a real node: no token or a wrong one, a proxy header claiming
 * another client, a 50 MB body and bad amounts. Each gets its coded answer, the node stays up,
 * and no row is written.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import { freePort } from '../helpers/node-process.js';
import { nodeConfig, testIdentity } from '../helpers/nodes.js';
import { rowCounts, type SecuredNode, startSecuredNode } from './harness.js';

const TOKEN = 'admin-token-for-the-attacks-0123';
const NOTHING = { command_log: 0, outbox: 0, object_head: 0, object_version: 0 };

interface Answer {
  status: number;
  body: string;
}

/** Sends `body` (a string, or `bytes` zero bytes in 1 MiB chunks) and resolves on the answer. */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string | { bytes: number } = '',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    // The node may answer and close before a large body is written: the answer is what counts.
    req.on('error', (err) => (answered ? undefined : reject(err)));
    let answered = false;
    req.on('response', () => {
      answered = true;
    });
    if (typeof body === 'string') return void req.end(body);
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let left = body.bytes;
    const pump = (): void => {
      while (left > 0 && !answered && !req.destroyed) {
        left -= chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('admin routes under attack', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(): Promise<{ secured: SecuredNode; peer: string }> {
    const a = testIdentity(0xa8);
    const b = testIdentity(0xb8);
    const unused = await freePort();
    const secured = await startSecuredNode((url) =>
      nodeConfig(a, url, [{ identity: b, url: `ws://127.0.0.1:${unused}/parley/v1` }]),
    );
    cleanups.push(() => secured.dispose());
    registerAdminRoutes(secured.node, { token: TOKEN });
    return { secured, peer: b.address };
  }

  const json = { 'content-type': 'application/json' };
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('refuses every admin route without the token, with a wrong one, and with a proxy header but no token', async () => {
    const { secured, peer } = await setup();
    const port = secured.node.port;
    const pay = JSON.stringify({ to: peer, amount: 5, currency: 'TIK' });
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong-token' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: TOKEN },
      { 'x-forwarded-for': '127.0.0.1' },
      { 'x-forwarded-for': '203.0.113.7', forwarded: 'for=127.0.0.1' },
    ];
    for (const headers of attempts) {
      expect((await send(port, 'GET', '/admin/status', headers)).status).toBe(401);
      expect((await send(port, 'POST', '/admin/pay', { ...json, ...headers }, pay)).status).toBe(401);
      const epoch = await send(port, 'POST', '/admin/peer-epoch', { ...json, ...headers }, '{}');
      expect(epoch.status).toBe(401);
    }
    expect(await rowCounts(secured.db)).toEqual(NOTHING);
    expect((await send(port, 'GET', '/admin/status', auth)).status).toBe(200);
  });

  it('answers a 50 MB body with 413 and stays up', async () => {
    const { secured } = await setup();
    const port = secured.node.port;
    const big = await send(port, 'POST', '/admin/pay', { ...json, ...auth }, { bytes: 50 * 1024 * 1024 });
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body)).toMatchObject({ error: 'BUSINESS_INVALID_INPUT' });
    expect((await send(port, 'GET', '/admin/status', auth)).status).toBe(200);
    expect(await rowCounts(secured.db)).toEqual(NOTHING);
  });

  it('refuses bad amounts with 400 BUSINESS_INVALID_INPUT and stores nothing', async () => {
    const { secured, peer } = await setup();
    const port = secured.node.port;
    const bodies = [
      `{"to":"${peer}","amount":-5,"currency":"TIK"}`,
      `{"to":"${peer}","amount":0,"currency":"TIK"}`,
      `{"to":"${peer}","amount":"NaN","currency":"TIK"}`,
      `{"to":"${peer}","amount":"5","currency":"TIK"}`,
      `{"to":"${peer}","amount":"Infinity","currency":"TIK"}`,
      `{"to":"${peer}","amount":1e400,"currency":"TIK"}`,
      `{"to":"${peer}","amount":-1e400,"currency":"TIK"}`,
      `{"to":"${peer}","amount":1.5,"currency":"TIK"}`,
      `{"to":"${peer}","amount":9007199254740993,"currency":"TIK"}`,
      `{"to":"${peer}","amount":null,"currency":"TIK"}`,
      `{"to":"${peer}","amount":[5],"currency":"TIK"}`,
      `{"to":"${peer}","currency":"TIK"}`,
      `{"to":"${peer}","amount":NaN,"currency":"TIK"}`,
    ];
    for (const body of bodies) {
      const answer = await send(port, 'POST', '/admin/pay', { ...json, ...auth }, body);
      expect(answer.status, body).toBe(400);
      expect(JSON.parse(answer.body), body).toMatchObject({ error: 'BUSINESS_INVALID_INPUT' });
    }
    expect(await rowCounts(secured.db)).toEqual(NOTHING);
    // The control: a good amount is accepted and written (the count above can see a write).
    const good = await send(
      port,
      'POST',
      '/admin/pay',
      { ...json, ...auth },
      `{"to":"${peer}","amount":5,"currency":"TIK"}`,
    );
    expect(good.status, good.body).toBeLessThan(300);
    expect((await rowCounts(secured.db)).outbox).toBe(1);
  });
});
