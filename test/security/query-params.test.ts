/**
 * Every query parameter of every HTTP route is validated: an unknown, repeated or malformed one
 * is answered 400 `HTTP_INVALID_QUERY` naming the problem (never a 500, never an empty body),
 * on a real node on 127.0.0.1 with its SQLite file.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type { VaspNode } from '../../src/node.js';
import { nodeConfig, startNode, tempDir, testIdentity } from '../helpers/nodes.js';

const ADMIN_TOKEN = 'admin-token-0123456789';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(): Promise<VaspNode> {
  const dir = tempDir();
  cleanups.push(dir.dispose);
  const peer = testIdentity(0x72);
  const started = await startNode(
    nodeConfig(testIdentity(0x71), `file:${join(dir.path, 'n.db')}`, [{ identity: peer }]),
  );
  cleanups.push(() => started.close());
  registerAdminRoutes(started, { token: ADMIN_TOKEN });
  return started;
}

async function call(
  n: VaspNode,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const headers: Record<string, string> = path.startsWith('/admin/')
    ? { authorization: `Bearer ${ADMIN_TOKEN}` }
    : {};
  const res = await fetch(`http://127.0.0.1:${n.port}${path}`, {
    ...init,
    headers: { ...headers, ...(init.headers as Record<string, string> | undefined) },
  });
  const text = await res.text();
  const json = res.headers.get('content-type')?.startsWith('application/json') && text !== '';
  return { status: res.status, body: json ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

describe('query parameters', () => {
  it('/healthz/history refuses a before, limit, kind or peer it cannot use with 400, naming the problem', async () => {
    const n = await node();
    for (const query of [
      'before=99999999999999999999',
      'before=9007199254740992',
      'before=0',
      'before=-1',
      'before=1e3',
      'before=',
      'limit=-1',
      'limit=abc',
      'limit=1001',
      'limit=1.5',
      'limit=1&limit=2',
      'kind=DROP%20TABLE',
      'peer=not%20an%20address',
      'beforeId=5',
    ]) {
      const { status, body } = await call(n, `/healthz/history?${query}`);
      expect(status, query).toBe(400);
      expect(body, query).toMatchObject({ error: 'HTTP_INVALID_QUERY' });
      expect(String(body?.['message']), query).toContain(query.split('=')[0]!);
    }
  });

  it('/healthz/history answers good queries (paging, kinds, peer)', async () => {
    const n = await node();
    for (const query of [
      '',
      '?before=9007199254740991',
      '?limit=0',
      '?limit=1000&before=1',
      '?kind=epoch_seen&kind=transition',
      `?peer=${n.channels[0]!.peer}`,
    ]) {
      const { status, body } = await call(n, `/healthz/history${query}`);
      expect(status, query).toBe(200);
      expect(body, query).toHaveProperty('events');
    }
  });

  it('the routes that take no parameters refuse an unknown one', async () => {
    const n = await node();
    for (const path of [
      '/healthz',
      '/metrics',
      '/livez',
      '/admin/status',
      '/dashboard/',
      '/dashboard/app.js',
    ]) {
      expect((await call(n, path)).status, path).toBe(200);
      const { status, body } = await call(n, `${path}?verbose=1`);
      expect(status, path).toBe(400);
      expect(body, path).toMatchObject({ error: 'HTTP_INVALID_QUERY' });
    }
  });

  it('/admin/pay refuses a wait it does not understand, and stores nothing', async () => {
    const n = await node();
    const { status, body } = await call(n, '/admin/pay?wait=maybe', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: n.channels[0]!.peer, amount: 1, currency: 'XUS' }),
    });
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'HTTP_INVALID_QUERY' });
    const channels = await n.status();
    expect(channels[0]?.openObjects ?? 0).toBe(0);
  });
});
