/**
 * Browser-reachable routes (docs/security.md, "Browser-reachable routes"): the dashboard,
 * socket.io (polling and WebSocket), `/healthz`, `/healthz/history`, `/metrics`, `/livez` and the
 * admin routes refuse a Host or Origin naming another site (DNS rebinding, cross-site reads), on
 * a real node on 127.0.0.1; the configured `allowedHosts` are served, and a request with the
 * status token is served whatever its Host.
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type { VaspNode } from '../../src/node.js';
import { nodeConfig, startNode, tempDir, testIdentity } from '../helpers/nodes.js';

const TOKEN = 'status-token-for-the-probe-0123';
const ADMIN_TOKEN = 'admin-token-0123456789';
const ROUTES = [
  '/healthz',
  '/healthz/history',
  '/metrics',
  '/livez',
  '/dashboard/',
  '/dashboard/app.js',
  '/socket.io/?EIO=4&transport=polling',
  '/admin/status',
];

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(allowedHosts: string[] = []): Promise<VaspNode> {
  const dir = tempDir();
  cleanups.push(dir.dispose);
  const self = testIdentity(0x61);
  const started = await startNode({
    ...nodeConfig(self, `file:${join(dir.path, 'n.db')}`, []),
    allowedHosts,
    status: { token: TOKEN },
  });
  cleanups.push(() => started.close());
  registerAdminRoutes(started, { token: ADMIN_TOKEN, allowedHosts });
  return started;
}

function get(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const authorization = path.startsWith('/admin/') ? { authorization: `Bearer ${ADMIN_TOKEN}` } : {};
    const req = request(
      { host: '127.0.0.1', port, path, method: 'GET', headers: { ...authorization, ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** How a raw WebSocket upgrade to socket.io ends: `open`, or the HTTP status it was refused with. */
function wsUpgrade(port: number, headers: Record<string, string>): Promise<'open' | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { headers });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => resolve(0));
  });
}

describe('browser-reachable routes refuse another site in Host or Origin', () => {
  it('answer 403 to Host: evil.example and to Origin: http://evil.example, on every route', async () => {
    const n = await node();
    for (const path of ROUTES) {
      expect((await get(n.port, path, {})).status, path).toBe(200);
      const byHost = await get(n.port, path, { host: 'evil.example' });
      expect(byHost.status, `${path} Host`).toBe(403);
      expect(byHost.body, path).not.toContain(n.address);
      const byOrigin = await get(n.port, path, { origin: 'http://evil.example' });
      expect(byOrigin.status, `${path} Origin`).toBe(403);
      expect(byOrigin.body, path).not.toContain(n.address);
      expect((await get(n.port, path, { origin: 'null' })).status, `${path} Origin null`).toBe(403);
    }
    const refused = await get(n.port, '/healthz', { host: 'evil.example:7100' });
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'HTTP_HOST_NOT_ALLOWED' });
  });

  it('serve loopback names, IP literals and the page own origin', async () => {
    const n = await node();
    const cases: Array<Record<string, string>> = [
      { host: `localhost:${n.port}` },
      { host: `127.0.0.1:${n.port}` },
      { host: `[::1]:${n.port}` },
      { host: `10.1.2.3:${n.port}` },
      { host: `10.1.2.3:${n.port}`, origin: `http://10.1.2.3:${n.port}` },
      { origin: 'http://localhost:3000' },
    ];
    for (const headers of cases) {
      for (const path of ROUTES) expect((await get(n.port, path, headers)).status, path).toBe(200);
    }
  });

  it('serve the configured allowedHosts (Host and Origin)', async () => {
    const n = await node(['parley.example.com']);
    for (const path of ROUTES) {
      const headers = { host: 'Parley.Example.com:7100', origin: 'https://parley.example.com' };
      expect((await get(n.port, path, headers)).status, path).toBe(200);
      expect((await get(n.port, path, { host: 'other.example.com' })).status, path).toBe(403);
    }
  });

  it('serve a status request with the status token whatever its Host (a remote scraper)', async () => {
    const n = await node();
    for (const path of ['/healthz', '/healthz/history', '/metrics', '/livez']) {
      const headers = { host: 'scraper.internal', authorization: `Bearer ${TOKEN}` };
      expect((await get(n.port, path, headers)).status, path).toBe(200);
      expect((await get(n.port, path, { host: 'scraper.internal' })).status, path).toBe(403);
    }
  });

  it('refuse a cross-site WebSocket to socket.io (raw ws, Origin or Host) and serve a same-site one', async () => {
    const n = await node();
    expect(await wsUpgrade(n.port, { origin: 'http://evil.example' })).toBe(403);
    expect(await wsUpgrade(n.port, { host: 'evil.example' })).toBe(403);
    expect(await wsUpgrade(n.port, { origin: `http://127.0.0.1:${n.port}` })).toBe('open');
  });

  it('give a real socket.io client with Origin: http://evil.example no snapshot', async () => {
    const n = await node();
    const connect = (headers: Record<string, string>): Promise<string> =>
      new Promise((resolve) => {
        const socket = io(`http://127.0.0.1:${n.port}`, {
          path: '/socket.io',
          transports: ['websocket'],
          reconnection: false,
          forceNew: true,
          extraHeaders: headers,
        });
        cleanups.push(() => {
          socket.close();
        });
        socket.once('snapshot', () => resolve('snapshot'));
        socket.once('connect_error', () => resolve('refused'));
      });
    expect(await connect({ origin: 'http://evil.example' })).toBe('refused');
    expect(await connect({})).toBe('snapshot');
  });
});
