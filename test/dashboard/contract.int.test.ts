import { request } from 'node:http';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createPaymentsView } from '../../src/admin/payments.js';
import { DASHBOARD_CONTRACT_VERSION, type PaymentsAnswer } from '../../src/dashboard/events.js';
import type { VaspNode } from '../../src/node.js';
import { createPaymentsQuery } from '../../src/store/payments-query.js';
import { nodeConfig, startNode, tempDir, testIdentity } from '../helpers/nodes.js';
import { connectDashboard, type DashboardClient } from './client.js';

function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard socket.io contract, against two running nodes on 127.0.0.1', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function pair(): Promise<[VaspNode, VaspNode]> {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const a = testIdentity(0x51);
    const b = testIdentity(0x52);
    const nodeB = await startNode(nodeConfig(b, `file:${join(dir.path, 'b.db')}`, [{ identity: a }]));
    cleanups.push(() => nodeB.close());
    const nodeA = await startNode(
      nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [{ identity: b, url: nodeB.url }]),
    );
    cleanups.push(() => nodeA.close());
    return [nodeA, nodeB];
  }

  function client(port: number, transports: Array<'polling' | 'websocket'>): DashboardClient {
    const c = connectDashboard(port, transports);
    cleanups.push(() => c.close());
    return c;
  }

  it.each([
    ['websocket', ['websocket']],
    ['long-polling', ['polling']],
  ] as const)(
    'sends a snapshot on connect, then numbered deltas that match the schemas (%s)',
    async (_name, transports) => {
      const [nodeA, nodeB] = await pair();
      const dash = client(nodeA.port, [...transports]);
      const snapshot = await dash.snapshot;
      expect(snapshot.version).toBe(DASHBOARD_CONTRACT_VERSION);
      expect(snapshot.node).toMatchObject({ address: nodeA.address, epoch: nodeA.epoch, url: nodeA.url });
      expect(snapshot.channels.map((c) => c.peer)).toEqual([nodeB.address]);
      expect(dash.names[0]).toBe('snapshot');

      // Business traffic and the connection show up in deltas.
      const { outcome$ } = nodeA.pay({ to: nodeB.address, amount: 42, currency: 'TIK' });
      await firstValueFrom(outcome$);
      await dash.until((d) => d.channels.some((c) => c.connection === 'connected' && c.commandsSent >= 1));

      // A peer that goes away: the row says so, the log tells why.
      await nodeB.close();
      const gone = await dash.until((d) =>
        d.channels.some((c) => c.connection === 'disconnected' && c.lastDisconnect !== null),
      );
      expect(gone.channels[0]?.connectedSinceMs).toBeNull();
      await dash.until((d) => d.log.some((e) => e.kind === 'disconnected' && e.peer === nodeB.address));

      expect(dash.violations).toEqual([]);
      const seqs = dash.deltas.map((d) => d.seq);
      expect(seqs[0]).toBeGreaterThan(snapshot.seq);
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i)); // no gap, no repeat
    },
  );

  it('streams health: snapshot and deltas carry the monitor part and RTT/phi samples', async (ctx) => {
    const [nodeA, nodeB] = await pair();
    const dash = client(nodeA.port, ['websocket']);
    const snapshot = await dash.snapshot;
    if (!snapshot.features.health) ctx.skip();
    expect(snapshot.thresholds.downPhi).toBeGreaterThanOrEqual(snapshot.thresholds.suspectPhi ?? 0);
    await dash.until((d) => d.channels.some((c) => c.health?.state === 'healthy'));
    await dash.until((d) =>
      d.samples.some((s) => s.peer === nodeB.address && s.rttMs !== null && s.phi !== null),
    );
    expect(dash.violations).toEqual([]);
  });

  it("carries a channel's closed-object restore on its row, in the schema, start to end", async () => {
    const [nodeA, nodeB] = await pair();
    const dash = client(nodeA.port, ['websocket']);
    await dash.snapshot;
    await firstValueFrom(nodeA.pay({ to: nodeB.address, amount: 5, currency: 'TIK' }).outcome$);
    await dash.until((d) => d.channels.some((c) => c.connection === 'connected'));
    const begun = await nodeA.sync(nodeB.address).startRestore('on_demand');
    const done = await dash.until((d) =>
      d.channels.some((c) => c.peer === nodeB.address && c.restore?.state === 'finished'),
    );
    expect(done.channels.find((c) => c.peer === nodeB.address)?.restore).toMatchObject({
      role: 'leader',
      reason: 'on_demand',
      startedAtMs: begun.startedAtMs,
      error: null,
    });
    await dash.until((d) => d.log.some((e) => e.kind === 'restore_finished' && e.peer === nodeB.address));
    expect(dash.violations).toEqual([]);
  });

  it('is read-only: whatever a client sends is ignored, and the client stays connected', async () => {
    const [nodeA, nodeB] = await pair();
    const dash = client(nodeA.port, ['websocket']);
    await dash.snapshot;
    const raw = dash.socket as unknown as { emit(name: string, ...args: unknown[]): void };
    raw.emit('pay', { to: nodeB.address, amount: 1 });
    raw.emit('close');
    raw.emit('snapshot', { version: 99 });
    const before = dash.deltas.length;
    await firstValueFrom(nodeA.pay({ to: nodeB.address, amount: 3, currency: 'TIK' }).outcome$);
    await dash.until(() => dash.deltas.length > before);
    expect(dash.socket.connected).toBe(true);
    expect(await nodeA.store.countOpenObjects(nodeB.address)).toBeLessThanOrEqual(1); // only our payment
  });

  it('answers payments requests as the admin API does, bad input with a coded 400, and changes nothing', async () => {
    const [nodeA, nodeB] = await pair();
    const dash = client(nodeA.port, ['websocket']);
    expect((await dash.snapshot).features.payments).toBe(true);
    const { outcome$ } = nodeA.pay({ to: nodeB.address, amount: 7, currency: 'TIK' });
    await firstValueFrom(outcome$);
    const raw = dash.socket as unknown as {
      emitWithAck(name: string, ...args: unknown[]): Promise<PaymentsAnswer>;
    };
    const view = createPaymentsView(createPaymentsQuery(nodeA.store), nodeA.address);
    // Once the business has taken the payment to its end, nothing changes between two reads.
    const closed = new URLSearchParams({ peer: nodeB.address, state: 'closed' });
    await expect
      .poll(async () => ((await view.list(closed)).body as { payments: unknown[] }).payments.length, {
        timeout: 20_000,
      })
      .toBe(1);
    const list = await raw.emitWithAck('payments', { peer: nodeB.address, state: 'closed' });
    expect(list).toEqual(await view.list(closed));
    const page = list.body as { payments: Array<{ referenceId: string }> };
    expect(page.payments).toHaveLength(1);
    const ref = page.payments[0]!.referenceId;
    const one = await raw.emitWithAck('payment', { referenceId: ref });
    expect(one.status).toBe(200);
    expect(one).toEqual(await view.show(ref, new URLSearchParams()));
    expect((one.body as { history: unknown[] }).history.length).toBeGreaterThan(0);
    // Refused, coded, nothing changed; the client stays connected.
    const bad = await raw.emitWithAck('payments', { state: 'sideways', extra: 'x' });
    expect(bad.status).toBe(400);
    expect((bad.body as { error: string }).error).toBe('HTTP_INVALID_QUERY');
    const badFilter = await raw.emitWithAck('payments', { state: 'sideways' });
    expect((badFilter.body as { error: string }).error).toBe('HTTP_INVALID_QUERY');
    const unknown = await raw.emitWithAck('payment', { referenceId: 'no-such-ref' });
    expect(unknown.status).toBe(404);
    expect((unknown.body as { error: string }).error).toBe('PAYMENT_UNKNOWN');
    expect((await raw.emitWithAck('payment', 42)).status).toBe(400);
    expect(dash.socket.connected).toBe(true);
    expect(await nodeA.store.countOpenObjects(nodeB.address)).toBe(0);
  });

  it('serves the page, its assets and the socket.io client from the node; the channel still works', async () => {
    const [nodeA, nodeB] = await pair();
    const root = await get(nodeA.port, '/');
    expect(root.status).toBe(302);
    expect(root.headers['location']).toBe('/dashboard/');
    const page = await get(nodeA.port, '/dashboard/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body).toContain('<table id="channels">');
    for (const asset of [
      '/dashboard/app.js',
      '/dashboard/chart.js',
      '/dashboard/payments.js',
      '/dashboard/style.css',
      '/socket.io/socket.io.min.js',
    ]) {
      expect((await get(nodeA.port, asset)).status, asset).toBe(200);
    }
    expect((await get(nodeA.port, '/dashboard/../package.json')).status).toBe(404);
    expect((await get(nodeA.port, '/dashboard/nope.js')).status).toBe(404);
    expect((await get(nodeA.port, '/no-such-route')).status).toBe(404);
    // The channel endpoint on the same port is untouched by socket.io's upgrade handling.
    const { outcome$ } = nodeB.pay({ to: nodeA.address, amount: 7, currency: 'TIK' });
    expect((await firstValueFrom(outcome$)).status).toBe('success');
  });

  it('lists the resync runs persisted by an earlier run of the node', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const a = testIdentity(0x53);
    const b = testIdentity(0x54);
    const nodeB = await startNode(nodeConfig(b, `file:${join(dir.path, 'b.db')}`, [{ identity: a }]));
    cleanups.push(() => nodeB.close());
    const configA = nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [{ identity: b, url: nodeB.url }]);
    const first = await startNode(configA);
    // The dialer resyncs on connect; wait until that run is persisted.
    await expect
      .poll(async () => (await first.resyncRuns()).filter((r) => r.outcome !== null).length, {
        timeout: 30_000,
      })
      .toBeGreaterThan(0);
    const [persisted] = await first.resyncRuns();
    await first.close();

    const again = await startNode(configA);
    cleanups.push(() => again.close());
    const dash = client(again.port, ['websocket']);
    const snapshot = await dash.snapshot;
    await expect
      .poll(
        async () => {
          const runs = [...snapshot.resyncRuns, ...dash.deltas.flatMap((d) => d.resyncRuns)];
          return runs.some((r) => r.status === 'completed' && r.startedAtMs === persisted!.startedAtMs);
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    expect(dash.violations).toEqual([]);
  });

  it('disconnects its clients when the node closes', async () => {
    const [nodeA] = await pair();
    const dash = client(nodeA.port, ['websocket']);
    await dash.snapshot;
    const disconnected = new Promise<string>((resolve) => dash.socket.once('disconnect', resolve));
    await nodeA.close();
    expect(await disconnected).toMatch(/disconnect|close/);
  });

  it('tells a refused request why, on the page and on socket.io, and serves its favicon', async () => {
    const [nodeA] = await pair();
    const page = await get(nodeA.port, '/dashboard/', { host: 'evil.example' });
    expect(page.status).toBe(403);
    expect(page.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(page.body).toBe(
      '403 Forbidden: HTTP_HOST_NOT_ALLOWED: Host "evil.example" is not this node (add it to allowedHosts)\n',
    );
    const io = await get(nodeA.port, '/socket.io/?EIO=4&transport=polling', {
      origin: 'http://evil.example',
    });
    expect(io.status).toBe(403);
    expect(io.body).toContain('Origin \\"http://evil.example\\" is another site');
    const icon = await get(nodeA.port, '/dashboard/favicon.svg');
    expect(icon.status).toBe(200);
    expect(icon.headers['content-type']).toBe('image/svg+xml');
    expect(icon.body).toMatch(/^<svg /);
  });
});
