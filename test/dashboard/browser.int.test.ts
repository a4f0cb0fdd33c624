import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type {
  PaymentDetail as PaymentDetailSchema,
  PaymentList as PaymentListSchema,
} from '../../src/admin/schemas.js';
import { type Demo, startDemo } from '../../src/demo.js';
import { createVaspNode } from '../../src/node.js';
import { nodeConfig, startNode, tempDir, testIdentity, until } from '../helpers/nodes.js';

type PaymentList = z.infer<typeof PaymentListSchema>;
type PaymentDetail = z.infer<typeof PaymentDetailSchema>;

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ARTIFACTS = join(process.cwd(), 'artifacts');

/**
 * Detection budget: with the default health options a silent peer is `down` at most 3.05 s
 * after its last heartbeat (src/health/options.ts); the dashboard adds at most one delta
 * interval (250 ms) and a frame; the rest is slack for a loaded 2-core CI machine.
 */
const DOWN_BUDGET_MS = 6_000;

function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

describe.skipIf(!HAVE_CHROMIUM)(
  `dashboard in headless Chromium (${HAVE_CHROMIUM ? CHROMIUM : `SKIPPED: ${CHROMIUM} is not installed`}), three demo nodes`,
  () => {
    let demo: Demo;
    let browser: Browser;
    let page: Page;
    let dir: { path: string; dispose(): void };

    beforeAll(async () => {
      dir = tempDir();
      demo = await startDemo({ dir: dir.path, portBase: 0 });
      browser = await launch();
      page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
      await page.goto(demo.byName('alice').dashboardUrl);
    });

    afterAll(async () => {
      if (page) {
        mkdirSync(ARTIFACTS, { recursive: true });
        await page
          .screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })
          .catch(() => undefined);
      }
      await browser?.close();
      await demo?.close();
      dir?.dispose();
    });

    const row = (name: string): string => `#channels tr[data-peer="${demo.byName(name).identity.address}"]`;

    it('shows every channel of the node, live, with its health', async () => {
      await page.waitForSelector('#link[data-state="live"]');
      await page.waitForSelector(`${row('bob')}[data-health="healthy"]`);
      await page.waitForSelector(`${row('carol')}[data-health="healthy"]`);
      expect(await page.locator('#channels tbody tr').count()).toBe(2);
      const address = demo.byName('alice').identity.address;
      expect(await page.textContent('#node-address')).toContain(address.slice(0, 8));
      expect(await page.textContent('#sum-healthy')).toBe('2');
      // Peers by their configured names, not truncated addresses; the page has its icon.
      expect(await page.textContent(`${row('bob')} td:nth-child(1)`)).toBe('bob');
      expect(await page.getAttribute(`${row('carol')}`, 'data-name')).toBe('carol');
      expect(await page.locator('#legend').textContent()).toContain('bob');
      const icon = await page.getAttribute('link[rel="icon"]', 'href');
      const favicon = await page.request.get(new URL(icon!, page.url()).toString());
      expect(favicon.status()).toBe(200);
      expect(favicon.headers()['content-type']).toBe('image/svg+xml');
      // The columns a person may not read at once are explained.
      expect(await page.getAttribute('th:has-text("Sent / recv")', 'title')).toMatch(/final outcomes/);
      expect(await page.textContent('#columns-note')).toContain('down above 8');
    });

    it('updates the table and the RTT / phi charts live', async () => {
      const bob = demo.byName('bob').identity.address;
      const points = async (): Promise<number> =>
        Number(await page.getAttribute(`#chart-phi path[data-peer="${bob}"]`, 'data-points'));
      await page.waitForSelector('#chart-rtt path.series');
      const before = await points();
      const sentCell = `${row('bob')} td:nth-child(10)`;
      const sentBefore = await page.textContent(sentCell);
      for (let i = 0; i < 3; i++) demo.pay('alice', 'bob');
      await expect.poll(() => page.textContent(sentCell), { timeout: 20_000 }).not.toBe(sentBefore);
      await expect.poll(points, { timeout: 20_000 }).toBeGreaterThan(before);
      expect(await page.locator('#chart-rtt path.series').count()).toBe(2);
      expect(Number(await page.textContent(`${row('bob')} td:nth-child(4)`))).toBeGreaterThanOrEqual(0);
    });

    it('lists payments with filters and shows one with its sides and whole signed history, as the admin API does', async () => {
      const alice = demo.byName('alice');
      const bob = demo.byName('bob').identity.address;
      // The admin API on the same node, to compare with (the page reads through the same functions).
      registerAdminRoutes(alice.node!, { isTrusted: () => true });
      const api = async <T>(path: string): Promise<T> => {
        const res = await fetch(`http://127.0.0.1:${alice.port}${path}`);
        expect(res.status).toBe(200);
        return (await res.json()) as T;
      };
      const list = async (query: string) => (await api<PaymentList>(`/admin/payments?${query}`)).payments;
      await expect
        .poll(() => demo.payments.final + demo.payments.failed, { timeout: 20_000 })
        .toBe(demo.payments.started);
      expect(await page.getAttribute('#payments-section', 'data-available')).toBe('true');

      // Filter: the channel to bob, open and closed.
      await page.selectOption('#payment-filters select[name="peer"]', bob);
      await page.click('#payment-filters button[type="submit"]');
      const expected = await list(`peer=${bob}&limit=50`);
      expect(expected.length).toBeGreaterThanOrEqual(3);
      const shown = async (): Promise<string[]> =>
        (
          await page
            .locator('#payments tbody tr')
            .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-ref') ?? ''))
        ).sort();
      await expect.poll(shown, { timeout: 10_000 }).toEqual(expected.map((p) => p.referenceId).sort());
      expect(await page.locator(`#payments tbody tr:not([data-peer="${bob}"])`).count()).toBe(0);
      expect(await page.textContent('#payments tbody tr td:nth-child(2)')).toBe('bob');

      // A time range with no payment in it.
      await page.fill('#payment-filters input[name="since"]', '2099-01-01T00:00:00');
      await page.click('#payment-filters button[type="submit"]');
      await page.waitForSelector('#payments-note:has-text("No payment matches")');
      expect(await page.locator('#payments tbody tr').count()).toBe(0);
      await page.fill('#payment-filters input[name="since"]', '');
      await page.selectOption('#payment-filters select[name="state"]', 'closed');
      await page.click('#payment-filters button[type="submit"]');
      const closed = await list(`peer=${bob}&state=closed&limit=50`);
      await expect.poll(shown, { timeout: 10_000 }).toEqual(closed.map((p) => p.referenceId).sort());
      await page.selectOption('#payment-filters select[name="state"]', '');
      await page.click('#payment-filters button[type="submit"]');
      await expect.poll(shown, { timeout: 10_000 }).toEqual(expected.map((p) => p.referenceId).sort());

      // The detail: the object, each side's status, every request and response JWS.
      const ref = expected[0]!.referenceId;
      await page.click(`#payments tbody tr[data-ref="${ref}"]`);
      await page.waitForSelector(`#payment-detail[data-ref="${ref}"]`);
      const detailOf = () => api<PaymentDetail>(`/admin/payments/${encodeURIComponent(ref)}?peer=${bob}`);
      await expect
        .poll(
          async () =>
            (await page.locator('#payment-history li').count()) === (await detailOf()).history.length,
          {
            timeout: 10_000,
          },
        )
        .toBe(true);
      const detail = await detailOf();
      const signed = detail.history[0]!;
      const first = page.locator('#payment-history li').first();
      expect(await first.getAttribute('data-cid')).toBe(signed.cid);
      expect(await first.locator('pre[data-part="request"]').textContent()).toBe(signed.requestJws);
      expect(await first.locator('pre[data-part="response"]').textContent()).toBe(signed.responseJws);
      await expect
        .poll(async () => [
          await page.getAttribute('#payment-sides tr[data-side="sender"]', 'data-status'),
          await page.getAttribute('#payment-sides tr[data-side="receiver"]', 'data-status'),
        ])
        .toEqual([(await detailOf()).summary.senderStatus, (await detailOf()).summary.receiverStatus]);
      expect(await page.textContent('#payment-sides tr[data-side="sender"] td:first-child')).toBe(
        'sender (me)',
      );
      expect(JSON.parse((await page.textContent('#payment-object')) ?? '')).toMatchObject({
        reference_id: ref,
      });
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.locator('#payments-section').screenshot({ path: join(ARTIFACTS, 'dashboard-payments.png') });
    });

    it('shows backoffice_unreachable on the channel and the alerting state in words, until cleared', async () => {
      const health = demo.byName('alice').node!.health;
      const bob = demo.byName('bob').identity.address;
      await page.waitForSelector('#alerts[data-state="ok"]');
      expect(await page.isVisible('#no-alerts')).toBe(true);
      // What the webhook business reports when the back office does not answer one question.
      for (let i = 0; i < 3; i++)
        health.backoffice.report({ peer: bob, ok: false, id: 'q1', error: 'no answer within 5000 ms' });
      await page.waitForSelector(`${row('bob')} [data-flag="backoffice_unreachable"]`);
      await page.waitForSelector(`#log li[data-kind="backoffice_unreachable"][data-peer="${bob}"]`);
      expect(await page.textContent('#sum-backoffice')).toBe('1');
      const alert = `#alert-list li[data-alert="ParleyBackofficeUnreachable"][data-peer="${bob}"]`;
      await page.waitForSelector(alert);
      expect(await page.getAttribute('#alerts', 'data-state')).toBe('critical');
      expect(await page.textContent(alert)).toContain(
        'The back office does not answer for payments with bob',
      );
      // The node's back-office events stop moving: a node condition, under its alert's name.
      for (let i = 0; i < 5; i++)
        health.eventsDelivery.report({
          peer: bob,
          ok: false,
          id: 'ev-1',
          error: 'the receiver answered HTTP 503',
        });
      await page.waitForSelector('#alert-list li[data-alert="ParleyEventsUndeliverable"]');
      expect(await page.textContent('#alert-list li[data-alert="ParleyEventsUndeliverable"]')).toContain(
        'every later event waits behind ev-1 (bob)',
      );
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.locator('header').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-alerts.png'), fullPage: false });
      // Answered again: cleared everywhere.
      health.backoffice.report({ peer: bob, ok: true, id: 'q1' });
      health.eventsDelivery.report({ peer: bob, ok: true, id: 'ev-1' });
      await page.waitForSelector('#alerts[data-state="ok"]');
      expect(await page.locator(`${row('bob')} [data-flag="backoffice_unreachable"]`).count()).toBe(0);
      expect(await page.textContent('#sum-backoffice')).toBe('0');
      await page.waitForSelector(`#log li[data-kind="backoffice_reachable"][data-peer="${bob}"]`);
    });

    it("shows a channel's closed-object restore in words on its row, and logs its start and end", async () => {
      const bob = demo.byName('bob').identity.address;
      // What `parley resync --all bob` asks: alice leads a restore of the closed objects.
      await demo.byName('alice').node!.sync(bob).startRestore('on_demand');
      const line = `${row('bob')} .restore`;
      await page.waitForSelector(`${line}[data-restore="finished"]`, { timeout: 30_000 });
      expect(await page.textContent(line)).toMatch(
        /^restore finished \d\d:\d\d:\d\d, [\d,]+ objects restored(, [\d,]+ compared)? \(led by this node\)$/,
      );
      await page.waitForSelector(`#log li[data-kind="restore_started"][data-peer="${bob}"]`);
      const finished = `#log li[data-kind="restore_finished"][data-peer="${bob}"]`;
      await page.waitForSelector(finished);
      expect(await page.textContent(finished)).toContain(
        'bob: closed-object restore finished (led by this node)',
      );
      // One line at the start and one at the end, not one per batch.
      expect(await page.locator(`#log li[data-kind^="restore_"][data-peer="${bob}"]`).count()).toBe(2);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.locator('#channels').screenshot({ path: join(ARTIFACTS, 'dashboard-restore.png') });
    });

    it(`shows a stopped peer as down within the detection budget (${DOWN_BUDGET_MS} ms)`, async () => {
      const carol = demo.byName('carol').identity.address;
      const t0 = Date.now();
      await demo.stop('carol');
      await page.waitForSelector(`${row('carol')}[data-health="down"]`, { timeout: DOWN_BUDGET_MS });
      expect(Date.now() - t0).toBeLessThan(DOWN_BUDGET_MS);
      await page.waitForSelector(`#log li[data-kind="down"][data-peer="${carol}"]`);
      expect(await page.textContent('#sum-down')).toBe('1');
      await page.waitForSelector(`#alert-list li[data-alert="ParleyPeerDown"][data-peer="${carol}"]`);
      expect(await page.textContent(`#alert-list li[data-alert="ParleyPeerDown"]`)).toContain(
        'carol is down',
      );
      // No stale RTT or φ for a channel that is down: φ reads "down", the RTT is empty.
      expect(await page.textContent(`${row('carol')} td:nth-child(5)`)).toBe('down');
      expect(await page.textContent(`${row('carol')} td:nth-child(4)`)).toBe('—');
      expect(await page.textContent(`#log li[data-kind="down"][data-peer="${carol}"]`)).toContain('carol: ');

      // A restore asked for while carol is down waits for the next connection, and says why.
      await demo.byName('alice').node!.sync(carol).startRestore('on_demand');
      const line = `${row('carol')} .restore[data-restore="waiting"]`;
      await page.waitForSelector(line, { timeout: 30_000 });
      expect(await page.textContent(line)).toMatch(
        /^restore waiting: SYNC_[A-Z_]+ \(0 restored so far; it goes on at the next connection\)$/,
      );
      const waiting = `#log li[data-kind="restore_waiting"][data-peer="${carol}"]`;
      await page.waitForSelector(waiting);
      expect(await page.getAttribute(waiting, 'data-level')).toBe('warn');
    });

    it('shows a wiped peer as peer_state_lost, then a resync run that completes', async () => {
      const carol = demo.byName('carol').identity.address;
      demo.wipe('carol');
      const restartedAt = Date.now();
      await demo.start('carol');
      // alice dials carol again (backoff with jitter), sees the new epoch, resyncs.
      const lost = `#log li[data-kind="peer_state_lost"][data-peer="${carol}"]`;
      await page.waitForSelector(lost, { timeout: 60_000 });
      const completed = page.locator(`#resync-runs tr[data-peer="${carol}"][data-status="completed"]`);
      const completedSinceRestart = async (): Promise<number> => {
        let n = 0;
        for (let i = 0; i < (await completed.count()); i++) {
          if (Number(await completed.nth(i).getAttribute('data-started-at')) >= restartedAt - 1000) n++;
        }
        return n;
      };
      await expect.poll(completedSinceRestart, { timeout: 60_000, interval: 250 }).toBeGreaterThan(0);
      await page.waitForSelector(`${row('carol')}[data-health="healthy"][data-state-lost="false"]`);
      await page.waitForSelector(`#log li[data-kind="resync_completed"][data-peer="${carol}"]`);
      // The closed-object restore that waited goes on (or a new one for the lost state) and ends.
      await page.waitForSelector(`${row('carol')} .restore[data-restore="finished"]`, { timeout: 60_000 });
      // The state-lost tile still counts it (the last 24 hours) once the resync completed,
      // with the time and the name of the last one; and so does a page loaded afterwards.
      expect(await page.textContent('#sum-lost')).toBe('1');
      expect(await page.getAttribute('#sum-lost-last', 'data-peer')).toBe(carol);
      expect(await page.textContent('#sum-lost-last')).toMatch(/^last \d\d:\d\d:\d\d · carol$/);
      await page.reload();
      await page.waitForSelector('#link[data-state="live"]');
      await expect.poll(() => page.textContent('#sum-lost'), { timeout: 10_000 }).toBe('1');
    });
  },
);

describe.skipIf(!HAVE_CHROMIUM)(
  `dashboard of a node restoring a wiped peer's closed objects in headless Chromium (${HAVE_CHROMIUM ? CHROMIUM : `SKIPPED: ${CHROMIUM} is not installed`})`,
  () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterAll(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('shows the restore running with its count, then finished, in words', async () => {
      const CLOSED = 8;
      const dir = tempDir();
      cleanups.push(() => dir.dispose());
      const a = testIdentity(0x71);
      const w = testIdentity(0x72);
      // A slow restore (2 objects a second, 2 a batch): its progress is on the page for a while.
      const nodeA = await createVaspNode(nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [{ identity: w }]), {
        sync: { restoreObjectsPerS: 2, restoreBatchObjects: 2 },
      });
      cleanups.push(() => nodeA.close());
      const wConfig = (db: string) =>
        nodeConfig(w, `file:${join(dir.path, db)}`, [{ identity: a, url: nodeA.url }]);
      let nodeW = await startNode(wConfig('w1.db'));
      cleanups.push(() => nodeW.close()); // whichever W is up at the end
      for (let i = 0; i < CLOSED; i++)
        await firstValueFrom(nodeA.pay({ to: w.address, amount: 10 + i, currency: 'TIK' }).outcome$);
      // Every payment closed on both sides (the automatic businesses settle them).
      const open = async () =>
        (await nodeA.store.countOpenObjects(w.address)) + (await nodeW.store.countOpenObjects(a.address));
      await until([nodeA, nodeW], async () => (await open()) === 0, { timeoutMs: 30_000 });
      await nodeW.close();

      const browser = await launch();
      cleanups.push(() => browser.close());
      const page = await browser.newPage({ viewport: { width: 1400, height: 600 } });
      await page.goto(`http://127.0.0.1:${nodeA.port}/dashboard/`);
      await page.waitForSelector('#link[data-state="live"]');
      // W comes back with an empty database: A sees the lost state and leads the restore.
      nodeW = await startNode(wConfig('w2.db'));
      const line = `#channels tr[data-peer="${w.address}"] .restore`;
      await expect
        .poll(() => page.textContent(line), { timeout: 30_000, interval: 100 })
        .toMatch(/^restoring closed objects: [1-9][\d,]* restored(, [\d,]+ compared)? \(led by this node\)$/);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.locator('#channels').screenshot({ path: join(ARTIFACTS, 'dashboard-restore-running.png') });
      await page.waitForSelector(`${line}[data-restore="finished"]`, { timeout: 60_000 });
      expect(await page.textContent(line)).toMatch(
        new RegExp(`^restore finished \\d\\d:\\d\\d:\\d\\d, ${CLOSED} objects restored, `),
      );
      await page.waitForSelector(`#log li[data-kind="restore_started"][data-peer="${w.address}"]`);
      await page.waitForSelector(`#log li[data-kind="restore_finished"][data-peer="${w.address}"]`);
    });
  },
);

describe.skipIf(!HAVE_CHROMIUM)(
  `dashboard of a replica in headless Chromium (${HAVE_CHROMIUM ? CHROMIUM : `SKIPPED: ${CHROMIUM} is not installed`})`,
  () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterAll(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('marks the channels another replica serves as standby, and logs the takeover', async () => {
      const dir = tempDir();
      cleanups.push(() => dir.dispose());
      const a = testIdentity(0x61);
      const b = testIdentity(0x62);
      const nodeB = await startNode(nodeConfig(b, `file:${join(dir.path, 'b.db')}`, [{ identity: a }]));
      cleanups.push(() => nodeB.close());
      const replica = async (id: string) => {
        const node = await startNode({
          ...nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [{ identity: b, url: nodeB.url }]),
          replica: { id, leaseTtlMs: 3_000, renewMs: 200 },
        });
        cleanups.push(() => node.close());
        return node;
      };
      const a1 = await replica('a1');
      await until([a1], async () => (await a1.status())[0]?.lease === 'owner', { timeoutMs: 20_000 });
      const a2 = await replica('a2');

      const browser = await launch();
      cleanups.push(() => browser.close());
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${a2.port}/dashboard/`);
      const row = `#channels tr[data-peer="${b.address}"]`;
      await page.waitForSelector(`${row} [data-flag="standby"]`);

      await a1.close();
      await page.waitForSelector(`#log li[data-kind="lease_acquired"][data-peer="${b.address}"]`, {
        timeout: 20_000,
      });
      await page.waitForSelector(`${row}:not(:has([data-flag="standby"]))`, { timeout: 20_000 });
    });
  },
);
