/**
 * Configuration validation (docs/configuration.md): unknown keys refused with a "did you mean"
 * hint, every problem listed in one pass, JSON syntax errors with line and column, insecure
 * peer URLs refused at `parley peer add` and at load, unknown `PARLEY_*` variables warned about.
 * Real files in a temp folder, the real CLI in-process.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runStart } from '../../src/cli/commands/start.js';
import type { CliIo } from '../../src/cli/io.js';
import { loadNodeConfig, parseNodeConfig, unknownParleyEnv } from '../../src/config.js';
import { isParleyError } from '../../src/errors.js';
import { cli, tempDir } from '../cli/helpers.js';
import { testIdentity } from '../helpers/nodes.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const me = testIdentity(0x41);
const peer = testIdentity(0x42);
const valid = {
  address: me.address,
  privateKeySeed: me.seedHex,
  listen: { host: '127.0.0.1', port: 0 },
  peers: [{ address: peer.address, publicKey: peer.publicKeyHex, url: 'ws://127.0.0.1:7101' }],
};

/** The CONFIG_INVALID message `fn` throws. */
function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isParleyError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID');
}

function configFile(content: string): string {
  const dir = tempDir();
  cleanups.push(dir.dispose);
  const file = join(dir.path, 'parley.config.json');
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe('strict configuration', () => {
  it('refuses unknown keys in every section, with a did-you-mean hint', () => {
    const message = problems(() =>
      parseNodeConfig({
        ...valid,
        lisen: { port: 1 },
        maxFrameByte: 2048,
        listen: { host: '127.0.0.1', prot: 7100 },
        peers: [{ address: peer.address, pubkey: peer.publicKeyHex }],
        status: { tokn: 'x'.repeat(16) },
        health: { downPhy: 9 },
      }),
    );
    expect(message).toContain('"lisen" (did you mean "listen"?)');
    expect(message).toContain('"maxFrameByte" (did you mean "maxFrameBytes"?)');
    expect(message).toContain('listen: unknown key "prot" (did you mean "port"?)');
    expect(message).toContain('peers.0: unknown key "pubkey" (did you mean "publicKey"?)');
    expect(message).toContain('status: unknown key "tokn" (did you mean "token"?)');
    expect(message).toContain('health: unknown key "downPhy" (did you mean "downPhi"?)');
    expect(problems(() => parseNodeConfig({ ...valid, zzzzzzzz: 1 }))).toContain('known keys:');
  });

  it('lists every problem in one pass: a bad address, a bad peer URL, inverted phi thresholds', () => {
    const message = problems(() =>
      parseNodeConfig({
        ...valid,
        address: 'not-an-address',
        peers: [{ address: 'nope', publicKey: 'zz', url: 'ftp://x' }],
        health: { suspectPhi: 8, downPhi: 2 },
        replica: { id: 'r', leaseTtlMs: 'soon', renewMs: 99_999 },
      }),
    );
    for (const expected of [
      'address: not a bech32',
      'peers.0.address',
      'peers.0.publicKey',
      'peers.0.url: expected a ws:// or wss:// URL',
      'health: downPhi must be >= suspectPhi',
      'replica.leaseTtlMs',
    ]) {
      expect(message).toContain(expected);
    }
  });

  it('reports a JSON syntax error with its line and column', () => {
    const file = configFile('{\n  "address": "x",\n  "listen": { "port": 7100, },\n}\n');
    const message = problems(() => loadNodeConfig(file, {}));
    expect(message).toContain(`${file}:3:29: invalid JSON`);
    expect(problems(() => loadNodeConfig(configFile('{"a": tru}'), {}))).toContain(
      ':1:10: invalid JSON: expected "true"',
    );
    expect(problems(() => loadNodeConfig(configFile('[1]'), {}))).toContain('expected a JSON object');
  });

  it('refuses a plain ws:// peer URL off loopback at load', () => {
    const config = { ...valid, peers: [{ ...valid.peers[0], url: 'ws://example.com:7100' }] };
    const message = problems(() => loadNodeConfig(configFile(JSON.stringify(config)), {}));
    expect(message).toContain('peers.0.url: plain ws:// only on loopback');
    expect(() =>
      parseNodeConfig({ ...valid, peers: [{ ...valid.peers[0], url: 'wss://example.com:7100' }] }),
    ).not.toThrow();
  });

  it('names the environment variable a bad value came from', () => {
    const message = problems(() =>
      loadNodeConfig(configFile(JSON.stringify(valid)), {
        PARLEY_PORT: 'seventy',
        PARLEY_STATUS_TOKEN: 'short',
      }),
    );
    expect(message).toContain('listen.port: ');
    expect(message).toContain('(from PARLEY_PORT)');
    expect(message).toContain('(from PARLEY_STATUS_TOKEN)');
  });
});

describe('parley peer add', () => {
  it('refuses --url ws://example.com (plain ws off loopback) with exit 2 and leaves the file as it was', async () => {
    const file = configFile(`${JSON.stringify({ ...valid, peers: [] }, null, 2)}\n`);
    const before = readFileSync(file, 'utf8');
    const args = ['--address', peer.address, '--public-key', peer.publicKeyHex];
    const { code, err } = await cli(['peer', 'add', '--config', file, ...args, '--url', 'ws://example.com']);
    expect(code).toBe(2);
    expect(err).toContain('CONFIG_INVALID');
    expect(err).toContain('plain ws:// only on loopback');
    expect(readFileSync(file, 'utf8')).toBe(before);
    const ok = await cli(['peer', 'add', '--config', file, ...args, '--url', 'wss://example.com']);
    expect(ok.code).toBe(0);
  });

  it('reports a JSON syntax error in the file with its line and column', async () => {
    const file = configFile('{\n  "address": 1\n  "x": 2\n}');
    const args = ['--address', peer.address, '--public-key', peer.publicKeyHex];
    const { code, err } = await cli(['peer', 'add', '--config', file, ...args]);
    expect(code).toBe(2);
    expect(err).toContain(`${file}:3:3: invalid JSON`);
  });
});

describe('unknown PARLEY_* environment variables', () => {
  it('are listed, and parley start warns about them (unknown_env) without refusing to start', async () => {
    expect(
      unknownParleyEnv({ PARLEY_DATBASE: 'x', PARLEY_PORT: '1', PARLEY_ADMIN_TOKEN: 't', HOME: '/' }),
    ).toEqual(['PARLEY_DATBASE']);
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const file = join(dir.path, 'parley.config.json');
    writeFileSync(file, JSON.stringify({ ...valid, peers: [], database: 'file:n.db' }), { mode: 0o600 });
    let out = '';
    const io: CliIo = {
      out: (text) => {
        out += text;
      },
      err: (text) => {
        out += text;
      },
      env: { PARLEY_DATBASE: 'file:typo.db', PARLEY_LOGLEVEL: 'debug' },
      cwd: dir.path,
    };
    const code = await runStart({ config: file }, io, { stopSignal: Promise.resolve('SIGTERM') });
    expect(code).toBe(0);
    const warning = out
      .split('\n')
      .filter((line) => line.includes('unknown_env'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warning).toHaveLength(1);
    expect(warning[0]).toMatchObject({ level: 'warn', names: ['PARLEY_DATBASE', 'PARLEY_LOGLEVEL'] });
  });
});
