/**
 * The OpenAPI document against the real routes, both ways: every route the admin routes
 * dispatch is documented and every documented operation answers on a real node (never the
 * router's 404); every answer, 2xx, 4xx and 5xx, validates against the document's schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_OPERATIONS } from '../../src/admin/operations.js';
import { ADMIN_HANDLERS, registerAdminRoutes } from '../../src/admin/routes.js';
import type { VaspNode } from '../../src/node.js';
import { nodeConfig, startNode, tempDir, testIdentity } from '../helpers/nodes.js';
import { type Answer, checkedClient, rawRequest } from './checked-client.js';

const TOKEN = 'be'.repeat(32);
type Doc = Parameters<typeof checkedClient>[1] & { openapi: string; info: { version: string } };

describe('GET /admin/openapi.json against the real routes', () => {
  let node: VaspNode;
  let doc: Doc;
  let client: ReturnType<typeof checkedClient>;
  const dir = tempDir();

  beforeAll(async () => {
    const peer = testIdentity(0x72);
    node = await startNode(nodeConfig(testIdentity(0x71), `file:${dir.path}/a.db`, [{ identity: peer }]));
    registerAdminRoutes(node, { token: TOKEN, version: '1.2.3' });
    const answer = await rawRequest(node.port, {
      path: '/admin/openapi.json',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(answer.status).toBe(200);
    doc = answer.body as Doc;
    client = checkedClient(node.port, doc, { authorization: `Bearer ${TOKEN}` });
  });
  afterAll(async () => {
    await node.close();
    dir.dispose();
  });

  const documented = (): Array<{ method: string; path: string; operationId: string }> =>
    Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        operationId: (op as unknown as { operationId: string }).operationId,
      })),
    );

  it('is OpenAPI 3.1 and documents exactly the routes the admin routes dispatch', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe('1.2.3');
    const inDoc = documented()
      .map((o) => `${o.method} ${o.path} ${o.operationId}`)
      .sort();
    const inTable = ADMIN_OPERATIONS.map((o) => `${o.method} ${o.path} ${o.id}`).sort();
    expect(inDoc).toEqual(inTable);
    expect(Object.keys(ADMIN_HANDLERS).sort()).toEqual(ADMIN_OPERATIONS.map((o) => o.id).sort());
  });

  it('every documented operation answers on the node (not the 404 of an unknown route), as documented', async () => {
    for (const op of documented()) {
      const path = op.path.replace(/\{(\w+)\}/g, 'x');
      const answer: Answer = await client.call({
        method: op.method,
        path,
        ...(op.method === 'POST' ? { body: {} } : {}),
      });
      expect(answer.status, `${op.method} ${path}`).not.toBe(
        404 === answer.status && answer.body === null ? 404 : -1,
      );
      expect(answer.body, `${op.method} ${path} answers JSON`).not.toBeNull();
    }
  });

  it('an undocumented path is the router 404; a method a route does not take is 405 with Allow', async () => {
    const unknown = await client.call({ path: '/admin/nothing-here' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toBeNull();
    const wrong = await client.call({ method: 'DELETE', path: '/admin/payments' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers['allow']).toBe('GET');
    expect((wrong.body as { error: string }).error).toBe('HTTP_METHOD_NOT_ALLOWED');
  });

  it('refusals validate too: 400 query and body, 401, 403, 413, 415', async () => {
    const statuses: number[] = [];
    const call = async (spec: Parameters<typeof client.call>[0]) =>
      statuses.push((await client.call(spec)).status);
    await call({ path: '/admin/status?x=1' });
    await call({ method: 'POST', path: '/admin/pay', body: { to: 'nope', amount: -1, currency: '' } });
    await call({
      method: 'POST',
      path: '/admin/pay',
      body: 'not json',
      headers: { 'content-type': 'application/json' },
    });
    await call({ method: 'POST', path: '/admin/pay', body: 'x', headers: { 'content-type': 'text/plain' } });
    await call({ method: 'POST', path: '/admin/pay', body: { description: 'x'.repeat(70_000) } });
    await call({ path: '/admin/status', headers: { authorization: 'Bearer wrong' } });
    await call({ path: '/admin/status', headers: { host: 'evil.example' } });
    expect(statuses).toEqual([400, 400, 400, 415, 413, 401, 403]);
  });

  it('5xx validate too: the store closed under the routes answers 503 with Retry-After', async () => {
    await node.store.close();
    const list = await client.call({ path: '/admin/payments' });
    expect(list.status).toBe(503);
    expect(list.headers['retry-after']).toBe('1');
    const keys = await client.call({ path: '/admin/api-keys' });
    expect(keys.status).toBe(503);
    expect(client.seen.get('2xx')).toBeGreaterThan(0);
    expect(client.seen.get('4xx')).toBeGreaterThan(0);
    expect(client.seen.get('5xx')).toBeGreaterThan(0);
  });
});
