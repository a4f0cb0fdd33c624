/**
 * Who may read `/healthz`, `/healthz/history` and `/metrics` (`src/health/http.ts`): clients on
 * this machine, and beyond it only with the status token or `allowRemote`; `/livez` answers
 * anyone. Real HTTP on 127.0.0.1; a client "off this machine" is the same socket with the
 * locality check answering no (every test socket is on loopback).
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNodeConfig, parseNodeConfig } from '../../src/config.js';
import { createHealthMonitor } from '../../src/health/health-monitor.js';
import { registerHealthRoutes, type StatusAccess } from '../../src/health/http.js';
import { createMemoryHealthStore } from '../../src/health/memory-health-store.js';
import { createNodeMetrics } from '../../src/health/metrics.js';
import { createHttpRouter } from '../../src/http/router.js';
import { encodeAddress, generatePrivateKey } from '../../src/protocol/index.js';

const ME = encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(7) });
const TOKEN = 'status-token-0123456789';
const STATUS_ROUTES = ['/healthz', '/healthz/history', '/metrics'];

let server: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function serve(access: StatusAccess | undefined): Promise<string> {
  const store = createMemoryHealthStore();
  const monitor = createHealthMonitor({}, { me: ME, epoch: 'e', store, peers: store });
  const router = createHttpRouter();
  registerHealthRoutes(router, {
    ...(access ? { access } : {}),
    monitor,
    metrics: createNodeMetrics({ node: ME, monitor, channels: [] }),
    node: { address: ME, epoch: 'e' },
    probeStore: async () => undefined,
  });
  server = createServer(router.listener);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

const remote = (): boolean => false;

describe('status routes', () => {
  it('answer clients on this machine by default', async () => {
    const base = await serve(undefined);
    for (const route of [...STATUS_ROUTES, '/livez']) expect((await fetch(base + route)).status).toBe(200);
  });

  it('refuse a client off this machine (401 STATUS_UNAUTHORIZED) and reveal nothing; /livez still answers', async () => {
    const base = await serve({ isLocal: remote });
    for (const route of STATUS_ROUTES) {
      const res = await fetch(base + route);
      expect(res.status).toBe(401);
      const text = await res.text();
      expect(JSON.parse(text)).toMatchObject({ error: 'STATUS_UNAUTHORIZED' });
      expect(text).not.toContain(ME);
    }
    expect((await fetch(`${base}/livez`)).status).toBe(200);
  });

  it('serve a client off this machine with the token, and refuse a wrong or malformed one', async () => {
    const base = await serve({ isLocal: remote, token: TOKEN });
    for (const route of STATUS_ROUTES) {
      expect((await fetch(base + route, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
      for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, TOKEN, 'Bearer']) {
        expect((await fetch(base + route, { headers: { authorization } })).status).toBe(401);
      }
    }
  });

  it('take a request relayed by a proxy on this machine (Forwarded, X-Forwarded-For, X-Real-IP) as remote', async () => {
    const base = await serve({ token: TOKEN });
    const relays: Array<Record<string, string>> = [
      { forwarded: 'for=203.0.113.7' },
      { 'x-forwarded-for': '203.0.113.7' },
      { 'x-real-ip': '203.0.113.7' },
    ];
    for (const relayed of relays) {
      for (const route of STATUS_ROUTES) {
        expect((await fetch(base + route, { headers: relayed })).status).toBe(401);
        const withToken = { ...relayed, authorization: `Bearer ${TOKEN}` };
        expect((await fetch(base + route, { headers: withToken })).status).toBe(200);
      }
    }
  });

  it('serve everyone with allowRemote', async () => {
    const base = await serve({ isLocal: remote, allowRemote: true });
    for (const route of STATUS_ROUTES) expect((await fetch(base + route)).status).toBe(200);
  });
});

describe('status config', () => {
  const base = { address: ME, privateKeySeed: generatePrivateKey().seedHex };

  it('defaults to this machine only, takes a token of 16 characters or more, and PARLEY_STATUS_TOKEN', () => {
    expect(parseNodeConfig(base).status).toEqual({ allowRemote: false });
    expect(() => parseNodeConfig({ ...base, status: { token: 'short' } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => parseNodeConfig({ ...base, status: { open: true } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    const dir = mkdtempSync(join(tmpdir(), 'parley-status-'));
    try {
      const file = join(dir, 'node.json');
      writeFileSync(file, JSON.stringify({ ...base, status: { allowRemote: true } }));
      expect(loadNodeConfig(file, { PARLEY_STATUS_TOKEN: TOKEN }).status).toEqual({
        allowRemote: true,
        token: TOKEN,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
