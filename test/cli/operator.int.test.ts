/**
 * The operator's commands against real `parley start` processes (loopback, SQLite files):
 * payment list/show, apikey create/list/revoke, peer list/remove, pay --timeout to a down peer,
 * the config's own node only (NODE_NOT_RUNNING), LISTEN_ADDRESS_IN_USE, plain address errors.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest } from '../../src/cli/admin-client.js';
import type { InitResult } from '../../src/cli/commands/init.js';
import { type RuntimeInfo, runtimeFilePath } from '../../src/cli/runtime-file.js';
import { freePort } from '../helpers/node-process.js';
import { cli, type ParleyProcess, spawnParley, tempDir } from './helpers.js';

describe('operator commands against running nodes', () => {
  const children: ParleyProcess[] = [];
  const root = tempDir();
  let a: InitResult;
  let b: InitResult;
  let c: InitResult;
  let bPort: number;
  let ref: string;

  const spawn = (args: string[]): ParleyProcess => {
    const child = spawnParley(args);
    children.push(child);
    return child;
  };
  const init = async (name: string, port = 0): Promise<InitResult> => {
    const { code, out } = await cli(
      ['init', '--random-address', '--dir', name, '--port', String(port), '--json'],
      {
        cwd: root.path,
      },
    );
    expect(code).toBe(0);
    return JSON.parse(out) as InitResult;
  };
  const peerAdd = async (config: string, peer: InitResult, url?: string) =>
    expect(
      (
        await cli([
          'peer',
          'add',
          '--config',
          config,
          '--address',
          peer.address,
          '--public-key',
          peer.publicKey,
          ...(url ? ['--url', url] : []),
        ])
      ).code,
    ).toBe(0);

  beforeAll(async () => {
    a = await init('a');
    bPort = await freePort();
    b = await init('b', bPort);
    c = await init('c');
    await peerAdd(b.config, a);
    const nodeB = spawn(['start', '--config', b.config]);
    const startedB = await nodeB.waitFor((line) => line.event === 'started');
    await peerAdd(a.config, b, String(startedB['url']));
    // C never runs: its channel from A stays down.
    await peerAdd(a.config, c, `ws://127.0.0.1:${await freePort()}`);
    const nodeA = spawn(['start', '--config', a.config]);
    await nodeA.waitFor((line) => line.event === 'connected' && line['peer'] === b.address);
    const paid = await cli([
      'pay',
      '--config',
      a.config,
      '--to',
      b.address,
      '--amount',
      '5',
      '--currency',
      'XUS',
      '--wait',
      '--json',
    ]);
    expect(paid.code, paid.err).toBe(0);
    ref = (JSON.parse(paid.out) as { referenceId: string }).referenceId;
  }, 60_000);

  afterAll(async () => {
    for (const child of children.splice(0)) {
      if (child.child.exitCode === null && child.child.signalCode === null) {
        child.child.kill('SIGTERM');
        await child.exited;
      }
    }
    root.dispose();
  });

  it('payment list and payment show (with the signed history, --json too)', async () => {
    const listed = await cli(['payment', 'list', '--config', a.config, '--json']);
    expect(listed.code, listed.err).toBe(0);
    const page = JSON.parse(listed.out) as { payments: Array<{ referenceId: string; peer: string }> };
    expect(page.payments.map((p) => p.referenceId)).toContain(ref);
    const table = await cli(['payment', 'list', '--config', a.config, '--peer', b.address]);
    expect(table.out).toMatch(/^REFERENCE\s+PEER\s+STATE/);
    expect(table.out).toContain(ref);

    const shown = await cli(['payment', 'show', ref, '--config', a.config, '--json']);
    expect(shown.code, shown.err).toBe(0);
    const detail = JSON.parse(shown.out) as { history: Array<{ requestJws: string; responseJws: string }> };
    expect(detail.history.length).toBeGreaterThan(0);
    const human = await cli(['payment', 'show', ref, '--config', a.config]);
    expect(human.out).toContain('signed history');
    for (const c of detail.history) {
      expect(human.out).toContain(c.requestJws);
      expect(human.out).toContain(c.responseJws);
    }

    const bad = await cli(['payment', 'list', '--config', a.config, '--status', 'paid']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('HTTP_INVALID_QUERY');
    const missing = await cli(['payment', 'show', 'nope', '--config', a.config]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('PAYMENT_UNKNOWN');
  });

  it('pay to a down peer: said at once, and --wait --timeout ends (exit 1, durable, not known yet)', async () => {
    const started = await cli([
      'pay',
      '--config',
      a.config,
      '--to',
      c.address,
      '--amount',
      '1',
      '--currency',
      'XUS',
    ]);
    expect(started.code, started.err).toBe(0);
    expect(started.err).toContain(`the channel to ${c.address} is down`);
    const waited = await cli([
      'pay',
      '--config',
      a.config,
      '--to',
      c.address,
      '--amount',
      '1',
      '--currency',
      'XUS',
      '--wait',
      '--timeout',
      '1',
    ]);
    expect(waited.code).toBe(1);
    expect(waited.err).toContain('waiting up to 1 s');
    expect(waited.err).toContain('PAY_WAIT_TIMEOUT');
    expect(waited.err).toContain('is durable');
  });

  it('status shows no RTT for the down channel', async () => {
    const shown = await cli(['status', '--config', a.config]);
    expect(shown.code, shown.err).toBe(0);
    const row = shown.out.split('\n').find((line) => line.startsWith(c.address));
    expect(row?.split(/\s+/).slice(1, 4)).toEqual(['disconnected', expect.any(String), '-']);
  });

  it('plain address errors', async () => {
    const bad = await cli([
      'pay',
      '--config',
      a.config,
      '--to',
      'xyz1qqqqqq',
      '--amount',
      '1',
      '--currency',
      'XUS',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('not a Parley / LIP-5 address: expected lbr1');
    expect(bad.err).not.toContain('hrp');
    const peer = await cli(['peer', 'remove', '--config', a.config, '--address', 'lbr1nothing']);
    expect(peer.code).toBe(2);
    expect(peer.err).toContain('not a Parley / LIP-5 address');
  });

  it('apikey create (secret once), list, use from a client, revoke', async () => {
    const made = await cli([
      'apikey',
      'create',
      '--config',
      a.config,
      '--name',
      'back office',
      '--scopes',
      'read',
      '--json',
    ]);
    expect(made.code, made.err).toBe(0);
    const { key, secret } = JSON.parse(made.out) as { key: { id: string }; secret: string };
    const runtime = JSON.parse(readFileSync(runtimeFilePath(a.config), 'utf8')) as RuntimeInfo;
    const withKey = { url: runtime.adminUrl, token: secret };
    expect((await adminRequest(withKey, 'GET', '/admin/payments')).status).toBe(200);
    const listed = await cli(['apikey', 'list', '--config', a.config]);
    expect(listed.out).toMatch(new RegExp(`${key.id}\\s+back office\\s+read\\s+\\S+\\s+active`));
    expect(listed.out).not.toContain(secret);
    const revoked = await cli(['apikey', 'revoke', key.id, '--config', a.config]);
    expect(revoked.code, revoked.err).toBe(0);
    expect((await adminRequest(withKey, 'GET', '/admin/payments')).status).toBe(401);
    expect((await cli(['apikey', 'revoke', 'ffffffffffff', '--config', a.config])).err).toContain(
      'API_KEY_UNKNOWN',
    );
  });

  it('peer list, peer remove', async () => {
    const listed = await cli(['peer', 'list', '--config', a.config, '--json']);
    const peers = JSON.parse(listed.out) as Array<{ address: string; state?: string }>;
    expect(peers.map((p) => [p.address, p.state])).toEqual([
      [b.address, 'connected'],
      [c.address, 'disconnected'],
    ]);
    expect((await cli(['peer', 'remove', '--config', a.config, '--address', c.address])).code).toBe(0);
    const after = JSON.parse((await cli(['peer', 'list', '--config', a.config, '--json'])).out) as Array<{
      address: string;
    }>;
    expect(after.map((p) => p.address)).toEqual([b.address]);
    expect((await cli(['peer', 'remove', '--config', a.config, '--address', c.address])).code).toBe(2);
  });

  it("status / pay never act on another node than the config's: NODE_NOT_RUNNING, said plainly", async () => {
    // D's config names B's port; D is not running, B answers there.
    const d = await init('d', bPort);
    const status = await cli(['status', '--config', d.config]);
    expect(status.code).toBe(1);
    expect(status.err).toContain('NODE_NOT_RUNNING: that node is not running');
    expect(status.err).toContain('another node answers');
    expect(status.err).not.toContain('{');
    const pay = await cli([
      'pay',
      '--config',
      d.config,
      '--to',
      b.address,
      '--amount',
      '1',
      '--currency',
      'XUS',
    ]);
    expect(pay.code).toBe(1);
    expect(pay.err).toContain('that node is not running');

    // Starting D there: the port is taken, said plainly.
    const started = spawn(['start', '--config', d.config]);
    expect((await started.exited).code).toBe(1);
    expect(started.stderr()).toContain('LISTEN_ADDRESS_IN_USE');
    expect(started.stderr()).toContain(`127.0.0.1:${bPort} is in use`);
  });
});
