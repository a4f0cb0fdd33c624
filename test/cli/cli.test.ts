import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdminStatus } from '../../src/admin/routes.js';
import { createPaymentObject } from '../../src/business/index.js';
import { loopbackHostFor } from '../../src/cli/admin-client.js';
import { formatStatus } from '../../src/cli/commands/status.js';
import { createJsonLogger, healthEventLevel, nodeEventLevel } from '../../src/cli/log.js';
import { removeRuntimeFile, runtimeFilePath, writeRuntimeFile } from '../../src/cli/runtime-file.js';
import { loadNodeConfig, parseNodeConfig } from '../../src/config.js';
import {
  encodeAddress,
  encodeRequest,
  generatePrivateKey,
  privateKeyFromSeedHex,
  signJws,
} from '../../src/protocol/index.js';
import { openStore } from '../../src/store/index.js';
import { commandItem } from '../helpers/store.js';
import { cli, tempDir } from './helpers.js';

const COMMANDS = ['init', 'peer add', 'start', 'pay', 'status', 'command abandon', 'frame'];
const address = (byte: number): string =>
  encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(byte) });

describe('parley help and argument parsing', () => {
  it('lists every command in `parley --help`, with the exit codes', async () => {
    for (const argv of [['--help'], ['-h'], ['help'], []]) {
      const { code, out } = await cli(argv);
      expect(code).toBe(0);
      for (const command of COMMANDS) expect(out).toContain(`  ${command} `);
      expect(out).toContain('Exit codes');
    }
  });

  it.each(COMMANDS)('prints the usage and exit codes of `%s --help` (exit 0)', async (command) => {
    const { code, out } = await cli([...command.split(' '), '--help']);
    expect(code).toBe(0);
    expect(out).toContain(`Usage: parley ${command}`);
    expect(out).toContain('Exit codes');
  });

  it('answers `parley peer --help` with the peer help', async () => {
    const { code, out } = await cli(['peer', '--help']);
    expect(code).toBe(0);
    expect(out).toContain('Usage: parley peer add');
  });

  it.each([
    [['bogus']],
    [['peer']],
    [['peer', 'remove']],
    [['command']],
    [['command', 'abandon', '--config', 'x.json']],
    [['command', 'abandon', 'c1', 'c2', '--config', 'x.json']],
    [['command', 'abandon', 'c1']],
    [['init', '--bogus']],
    [['init']],
    [['init', '--address', address(1), '--random-address']],
    [['init', '--random-address', '--port', '70000']],
    [['init', '--random-address', '--port', 'http']],
    [['init', '--random-address', '--hrp', 'btc']],
    [['peer', 'add', '--address', address(1)]],
    [['start']],
    [['start', '--config', 'x.json', '--log-level', 'loud']],
    [['status']],
    [['status', '--config']],
    [['pay', '--config', 'x.json', '--to', address(1), '--currency', 'XUS']],
    [['pay', '--config', 'x.json', '--to', address(1), '--amount', '1.5', '--currency', 'XUS']],
    [['pay', '--config', 'x.json', '--to', address(1), '--amount', '0', '--currency', 'XUS']],
    [['pay', '--config', 'x.json', '--to', address(1), '--amount', '-3', '--currency', 'XUS']],
    [['frame']],
    [['frame', '/nonexistent/frame.jws']],
  ])('exits 2 on a usage error: parley %j', async (argv) => {
    const { code, err } = await cli(argv);
    expect(code).toBe(2);
    expect(err).not.toBe('');
  });
});

describe('parley init', () => {
  const dirs: Array<{ dispose(): void }> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });
  const dir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d.path;
  };

  it('writes a config that loads, with mode 0600 and the database beside it; prints the key to share', async () => {
    const root = dir();
    const { code, out } = await cli(
      ['init', '--address', address(0x41), '--dir', 'vasp', '--port', '7200', '--json'],
      {
        cwd: root,
      },
    );
    expect(code).toBe(0);
    const result = JSON.parse(out) as { config: string; address: string; publicKey: string; url: string };
    expect(result.config).toBe(join(root, 'vasp', 'parley.config.json'));
    expect(statSync(result.config).mode & 0o777).toBe(0o600);

    const raw = JSON.parse(readFileSync(result.config, 'utf8'));
    const config = parseNodeConfig(raw);
    expect(config.address).toBe(address(0x41));
    expect(config.peers).toEqual([]);
    expect(config.listen).toMatchObject({ host: '127.0.0.1', port: 7200 });
    expect(privateKeyFromSeedHex(config.privateKeySeed).publicKey.hex).toBe(result.publicKey);
    expect(result).toMatchObject({ address: address(0x41), url: 'ws://127.0.0.1:7200' });
    expect(loadNodeConfig(result.config, {}).database).toBe(`file:${join(root, 'vasp', 'parley.db')}`);
  });

  it('prints the address and public key for humans by default', async () => {
    const root = dir();
    const { code, out } = await cli(['init', '--random-address', '--hrp', 'lbr'], { cwd: root });
    expect(code).toBe(0);
    const config = parseNodeConfig(JSON.parse(readFileSync(join(root, 'parley.config.json'), 'utf8')));
    expect(config.address.startsWith('lbr1')).toBe(true);
    expect(out).toContain(config.address);
    expect(out).toContain(privateKeyFromSeedHex(config.privateKeySeed).publicKey.hex);
    expect(config.listen.port).toBe(7100);
  });

  it('never overwrites an existing config (and its key) without --force', async () => {
    const root = dir();
    expect((await cli(['init', '--random-address'], { cwd: root })).code).toBe(0);
    const file = join(root, 'parley.config.json');
    const before = readFileSync(file, 'utf8');
    const again = await cli(['init', '--random-address'], { cwd: root });
    expect(again.code).toBe(2);
    expect(again.err).toContain('CONFIG_INVALID');
    expect(readFileSync(file, 'utf8')).toBe(before);

    expect((await cli(['init', '--random-address', '--force'], { cwd: root })).code).toBe(0);
    expect(readFileSync(file, 'utf8')).not.toBe(before);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses an address that is not bech32 (exit 2, ADDRESS_INVALID, nothing written)', async () => {
    const root = dir();
    const { code, err } = await cli(['init', '--address', 'lbr1notanaddress'], { cwd: root });
    expect(code).toBe(2);
    expect(err).toContain('ADDRESS_INVALID');
    expect(() => statSync(join(root, 'parley.config.json'))).toThrow();
  });
});

describe('parley peer add', () => {
  const dirs: Array<{ dispose(): void }> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });

  async function initialised(): Promise<string> {
    const d = tempDir();
    dirs.push(d);
    await cli(['init', '--address', address(0x41)], { cwd: d.path });
    return join(d.path, 'parley.config.json');
  }

  /** `parley peer add --config <file> <args>`. */
  const peerAdd = (file: string, args: readonly string[]) => cli(['peer', 'add', '--config', file, ...args]);

  it('adds a peer, then updates the entry with the same address (a new key: the former is kept as retired); the file stays 0600 and valid', async () => {
    const file = await initialised();
    const key1 = generatePrivateKey().publicKey.hex;
    const key2 = generatePrivateKey().publicKey.hex;
    const peer = address(0x42);
    const added = await peerAdd(file, ['--address', peer, '--public-key', key1]);
    expect(added.code).toBe(0);
    const updated = await peerAdd(file, [
      '--address',
      peer,
      '--public-key',
      key2.toUpperCase(),
      '--url',
      'ws://127.0.0.1:7300',
    ]);
    expect(updated.code).toBe(0);
    const config = parseNodeConfig(JSON.parse(readFileSync(file, 'utf8')));
    expect(config.peers).toEqual([
      {
        address: peer,
        publicKey: key2,
        retiredPublicKeys: [key1],
        transport: 'ws',
        url: 'ws://127.0.0.1:7300',
      },
    ]);
    expect(updated.out).toContain('former key is kept as retired');
    // The file keeps what was given: no defaults written out.
    expect(JSON.parse(readFileSync(file, 'utf8')).peers).toEqual([
      { address: peer, publicKey: key2, url: 'ws://127.0.0.1:7300', retiredPublicKeys: [key1] },
    ]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // Another rotation: both former keys, newest first; the same key again changes nothing.
    const key3 = generatePrivateKey().publicKey.hex;
    expect((await peerAdd(file, ['--address', peer, '--public-key', key3])).code).toBe(0);
    expect((await peerAdd(file, ['--address', peer, '--public-key', key3])).code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8')).peers).toEqual([
      { address: peer, publicKey: key3, retiredPublicKeys: [key2, key1] },
    ]);
  });

  it('adds a LIP-1 HTTP peer with its http(s) base URL', async () => {
    const file = await initialised();
    const key = generatePrivateKey().publicKey.hex;
    const peer = address(0x42);
    const added = await peerAdd(file, [
      '--address',
      peer,
      '--public-key',
      key,
      '--transport',
      'lip1-http',
      '--url',
      'https://vasp-b.example/api',
    ]);
    expect(added.code).toBe(0);
    const config = parseNodeConfig(JSON.parse(readFileSync(file, 'utf8')));
    expect(config.peers).toEqual([
      {
        address: peer,
        publicKey: key,
        retiredPublicKeys: [],
        transport: 'lip1-http',
        url: 'https://vasp-b.example/api',
      },
    ]);
  });

  it.each([
    ['a short public key', ['--address', address(0x42), '--public-key', 'abcd']],
    ['a bad address', ['--address', 'lbr1xyz', '--public-key', 'ab'.repeat(32)]],
    ['an http url', ['--address', address(0x42), '--public-key', 'ab'.repeat(32), '--url', 'http://x']],
    [
      'a lip1-http peer without a URL',
      ['--address', address(0x42), '--public-key', 'ab'.repeat(32), '--transport', 'lip1-http'],
    ],
    [
      'an unknown transport',
      ['--address', address(0x42), '--public-key', 'ab'.repeat(32), '--transport', 'carrier-pigeon'],
    ],
    ['the node itself', ['--address', address(0x41), '--public-key', 'ab'.repeat(32)]],
  ])('refuses %s with CONFIG_INVALID (exit 2) and leaves the file alone', async (_, args) => {
    const file = await initialised();
    const before = readFileSync(file, 'utf8');
    const { code, err } = await peerAdd(file, args);
    expect(code).toBe(2);
    expect(err).toContain('CONFIG_INVALID');
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('refuses an unreadable config with CONFIG_INVALID (exit 2)', async () => {
    const file = await initialised();
    writeFileSync(file, '{ not json');
    const { code, err } = await peerAdd(file, ['--address', address(0x42), '--public-key', 'ab'.repeat(32)]);
    expect(code).toBe(2);
    expect(err).toContain('CONFIG_INVALID');
  });
});

describe('parley status / pay without a running node', () => {
  it('exits 1 with NODE_NOT_RUNNING when the node (port 0) has no runtime file', async () => {
    const d = tempDir();
    try {
      await cli(['init', '--random-address', '--port', '0'], { cwd: d.path });
      const file = join(d.path, 'parley.config.json');
      const status = await cli(['status', '--config', file]);
      expect(status.code).toBe(1);
      expect(status.err).toContain('NODE_NOT_RUNNING');
      const pay = await cli([
        'pay',
        '--config',
        file,
        '--to',
        address(0x42),
        '--amount',
        '5',
        '--currency',
        'XUS',
      ]);
      expect(pay.code).toBe(1);
      expect(pay.err).toContain('NODE_NOT_RUNNING');
    } finally {
      d.dispose();
    }
  });

  it('exits 2 with CONFIG_INVALID when the config does not load', async () => {
    const { code, err } = await cli(['status', '--config', '/nonexistent/parley.config.json']);
    expect(code).toBe(2);
    expect(err).toContain('CONFIG_INVALID');
  });
});

describe('parley frame', () => {
  it('decodes and verifies a signed request; refuses it under another key (exit 1, code printed)', async () => {
    const d = tempDir();
    try {
      const key = generatePrivateKey();
      const payment = createPaymentObject({
        me: address(0x41),
        meSubaddressHex: '0000000000000001',
        to: address(0x42),
        toSubaddressHex: '0000000000000002',
        amount: 5,
        currency: 'XUS',
      });
      const request = {
        _ObjectType: 'CommandRequestObject' as const,
        cid: 'c1',
        command_type: 'PaymentCommand' as const,
        command: {
          _ObjectType: 'PaymentCommand' as const,
          _reads: {},
          _writes: { [payment.reference_id]: 'c1' },
          payment,
        },
      };
      const file = join(d.path, 'frame.jws');
      writeFileSync(file, signJws(encodeRequest(request), key));
      const ok = await cli(['frame', file, '--public-key', key.publicKey.hex]);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.out)).toMatchObject({ verified: true, frame: { cid: 'c1' } });
      const bad = await cli(['frame', file, '--public-key', generatePrivateKey().publicKey.hex]);
      expect(bad.code).toBe(1);
      expect(JSON.parse(bad.out).error).toBe('PROTOCOL_BAD_SIGNATURE');
    } finally {
      d.dispose();
    }
  });
});

describe('CLI pieces', () => {
  it('writes one JSON object per log line at or above the minimum level', () => {
    const lines: string[] = [];
    const logger = createJsonLogger(
      (l) => lines.push(l),
      'info',
      () => new Date(0),
    );
    logger.log('debug', 'command_received', { cid: 'x' });
    logger.log('info', 'connected', { peer: 'p' });
    expect(lines).toEqual([
      `${JSON.stringify({ ts: new Date(0).toISOString(), level: 'info', event: 'connected', peer: 'p' })}\n`,
    ]);
  });

  it('logs connection changes and finals at info, per-frame detail at debug, forks at error', () => {
    expect(nodeEventLevel({ type: 'connected', peer: 'p', dialed: true })).toBe('info');
    expect(nodeEventLevel({ type: 'disconnected', peer: 'p', closeCode: 1001, reason: '' })).toBe('info');
    expect(
      nodeEventLevel({
        type: 'command_final',
        peer: 'p',
        cid: 'c',
        status: 'success',
        code: null,
        referenceId: 'ref',
        myStatus: null,
        theirStatus: null,
      }),
    ).toBe('info');
    expect(
      nodeEventLevel({
        type: 'command_final',
        peer: 'p',
        cid: 'c',
        status: 'failure',
        code: 'x',
        referenceId: 'ref',
        myStatus: null,
        theirStatus: null,
      }),
    ).toBe('warn');
    expect(
      nodeEventLevel({ type: 'command_received', peer: 'p', cid: 'c', status: 'success', code: null }),
    ).toBe('debug');
    expect(nodeEventLevel({ type: 'command_queued', peer: 'p', cid: 'c', referenceId: 'r' })).toBe('debug');
    expect(nodeEventLevel({ type: 'fork', peer: 'p', cid: 'c' })).toBe('error');
    expect(nodeEventLevel({ type: 'command_dropped', peer: 'p', cid: 'c', code: 'COMMAND_ABANDONED' })).toBe(
      'warn',
    );
    expect(nodeEventLevel({ type: 'redial', peer: 'p', attempt: 0, delayMs: 120, kind: 'restart' })).toBe(
      'debug',
    );
  });

  it('logs health transitions to suspect or down, lost peer state, divergence, a peer behind and an abandoned command at warn', () => {
    expect(healthEventLevel({ kind: 'transition', peer: 'p', to: 'healthy' })).toBe('info');
    expect(healthEventLevel({ kind: 'transition', peer: 'p', to: 'suspect' })).toBe('warn');
    expect(healthEventLevel({ kind: 'transition', peer: 'p', to: 'down' })).toBe('warn');
    expect(healthEventLevel({ kind: 'peer_state_lost', peer: 'p' })).toBe('warn');
    expect(healthEventLevel({ kind: 'diverged', peer: 'p' })).toBe('warn');
    expect(healthEventLevel({ kind: 'converged', peer: 'p' })).toBe('info');
    expect(healthEventLevel({ kind: 'peer_behind', peer: 'p' })).toBe('warn');
    expect(healthEventLevel({ kind: 'peer_behind_cleared', peer: 'p' })).toBe('info');
    expect(healthEventLevel({ kind: 'command_abandoned', peer: 'p' })).toBe('warn');
  });

  it('reaches a node on loopback whatever address it listens on', () => {
    expect(loopbackHostFor('127.0.0.1')).toBe('127.0.0.1');
    expect(loopbackHostFor('0.0.0.0')).toBe('127.0.0.1');
    expect(loopbackHostFor('localhost')).toBe('127.0.0.1');
    expect(loopbackHostFor('::1')).toBe('[::1]');
    expect(loopbackHostFor('127.0.0.2')).toBe('127.0.0.2');
  });

  it('keeps the runtime file beside the config', () => {
    expect(runtimeFilePath('/x/parley.config.json')).toBe('/x/parley.config.runtime.json');
    expect(runtimeFilePath('/x/node.conf')).toBe('/x/node.conf.runtime.json');
  });

  it('removes only the runtime file this process wrote (another node’s, or an unreadable one, stays)', () => {
    const dir = tempDir();
    try {
      const config = join(dir.path, 'parley.config.json');
      const info = { address: 'a', url: 'ws://x', adminUrl: 'http://x', startedAt: 'now' };
      writeRuntimeFile(config, { ...info, pid: process.pid + 1 });
      removeRuntimeFile(config);
      expect(existsSync(runtimeFilePath(config))).toBe(true);
      writeFileSync(runtimeFilePath(config), 'not json');
      removeRuntimeFile(config);
      expect(readFileSync(runtimeFilePath(config), 'utf8')).toBe('not json');
      writeRuntimeFile(config, { ...info, pid: process.pid });
      removeRuntimeFile(config);
      expect(existsSync(runtimeFilePath(config))).toBe(false);
    } finally {
      dir.dispose();
    }
  });

  /** `parley status` of a node with these channels, as table rows. */
  const statusRows = (channels: AdminStatus['channels']): string[] =>
    formatStatus({ address: 'lbr1me', epoch: 'e1', url: 'ws://127.0.0.1:1/parley/v1', channels }).split('\n');

  it('formats the status as a table with one row per channel', () => {
    const rows = statusRows([
      {
        peer: 'lbr1peer',
        state: 'connected',
        inflight: 2,
        openObjects: 3,
        peerEpoch: null,
        health: { state: 'healthy', rttMs: 0.42, phi: 0.1 },
      },
      { peer: 'lbr1other', state: 'disconnected', inflight: 0, openObjects: 0, peerEpoch: 'e2' },
    ]);
    expect(rows).toContain('PEER       STATE         HEALTH   RTT    INFLIGHT  OPEN  PEER EPOCH');
    expect(rows).toContain('lbr1peer   connected     healthy  0.4ms  2         3     -');
    expect(rows).toContain('lbr1other  disconnected  -        -      0         0     e2');
  });

  it('adds a BEHIND column and the stuck cids while a peer is peer_behind', () => {
    const rows = statusRows([
      {
        peer: 'lbr1peer',
        state: 'connected',
        inflight: 2,
        openObjects: 1,
        peerEpoch: null,
        peerBehind: { peer: 'lbr1peer', sinceMs: 1, commands: 2, cids: ['c1', 'c2'] },
      },
      { peer: 'lbr1other', state: 'connected', inflight: 0, openObjects: 0, peerEpoch: null },
    ]);
    expect(rows).toContain('PEER       STATE      HEALTH  RTT  INFLIGHT  OPEN  PEER EPOCH  BEHIND');
    expect(rows).toContain('lbr1peer   connected  -       -    2         1     -           peer_behind 2');
    expect(rows).toContain('lbr1other  connected  -       -    0         0     -           -');
    expect(rows).toContain('peer_behind lbr1peer: 2 command(s) answered `wait` with no progress:');
    expect(rows).toContain('  c1');
    expect(rows).toContain('  end one with `parley command abandon <cid>` (docs/operations.md)');
  });

  it('says when commands of mine were answered with an answer that cannot end them here', () => {
    const states = { unsent: 0, unanswered: 0, waiting: 0, unapplied: 1, oldestUnansweredMs: null };
    const rows = statusRows([
      {
        peer: 'lbr1peer',
        state: 'connected',
        inflight: 1,
        inflightStates: states,
        openObjects: 1,
        peerEpoch: null,
      },
      {
        peer: 'lbr1other',
        state: 'connected',
        inflight: 0,
        inflightStates: { ...states, unapplied: 0 },
        openObjects: 0,
        peerEpoch: null,
      },
    ]);
    expect(rows.filter((r) => r.startsWith('unapplied '))).toEqual([
      expect.stringMatching(/^unapplied lbr1peer: 1 command\(s\) of mine answered by the peer/),
    ]);
  });

  it('adds a LEASE column for a replica', () => {
    const rows = statusRows([
      {
        peer: 'lbr1peer',
        state: 'connected',
        inflight: 0,
        openObjects: 1,
        peerEpoch: 'e2',
        lease: 'owner',
      },
      {
        peer: 'lbr1other',
        state: 'disconnected',
        inflight: 0,
        openObjects: 0,
        peerEpoch: null,
        lease: 'standby',
      },
    ]);
    expect(rows).toContain('PEER       STATE         HEALTH  RTT  INFLIGHT  OPEN  PEER EPOCH  LEASE');
    expect(rows).toContain('lbr1peer   connected     -       -    0         1     e2          owner');
    expect(rows).toContain('lbr1other  disconnected  -       -    0         0     -           standby');
  });
});

describe('parley check', () => {
  const dirs: Array<{ dispose(): void }> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });

  it("checks a node's SQLite database against its signed log: 0 when consistent, 1 with the problems, 2 without a database", async () => {
    const d = tempDir();
    dirs.push(d);
    const path = join(d.path, 'node.db');
    await cli(['init', '--address', address(0x41), '--database', `file:${path}`], { cwd: d.path });
    const file = join(d.path, 'parley.config.json');

    const missing = await cli(['check', '--config', file]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('CONFIG_INVALID');
    expect(existsSync(path)).toBe(false);

    const store = await openStore({ url: `file:${path}` });
    await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'c1' })]);
    await store.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'c1', write: 'c2' })]);
    await store.close();
    const ok = await cli(['check', '--config', file]);
    expect(ok).toMatchObject({ code: 0, out: 'ok: the derived state matches the signed log\n' });

    // A version lost behind the store's back (a bad restore, a hand edit).
    const db = new Database(path);
    db.prepare("DELETE FROM object_version WHERE version = 'c2'").run();
    db.close();
    const broken = await cli(['check', '--config', file, '--json']);
    expect(broken.code).toBe(1);
    const report = JSON.parse(broken.out) as { ok: boolean; problems: string[] };
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toContain('c2');
  });
});
