/**
 * Configuration from the environment: every setting has a `PARLEY_*` variable made from its
 * path in the schema, given values are validated like the file's (a problem names the
 * variable), and the key seed can come from a file or a variable so the file holds no secret.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { envName } from '../../src/config/settings.js';
import {
  applyEnv,
  ENV_ALIASES,
  loadNodeConfig,
  resolveNodeConfig,
  SETTINGS,
  unknownParleyEnv,
} from '../../src/config.js';
import { isParleyError } from '../../src/errors.js';
import { tempDir, testIdentity } from '../helpers/nodes.js';

const me = testIdentity(0x71);
const peer = testIdentity(0x72);

describe('configuration from the environment', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  /** A configuration file with `content`, in a fresh folder. */
  function configFile(content: Record<string, unknown>): { file: string; dir: string } {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const file = join(dir.path, 'parley.config.json');
    writeFileSync(file, JSON.stringify(content));
    return { file, dir: dir.path };
  }

  const load = (content: Record<string, unknown>, env: NodeJS.ProcessEnv) =>
    loadNodeConfig(configFile(content).file, env);
  const problem = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      if (isParleyError(err, 'CONFIG_INVALID')) return err.message;
      throw err;
    }
    throw new Error('expected CONFIG_INVALID');
  };

  it('names each setting PARLEY_ and its path in SCREAMING_SNAKE', () => {
    expect(envName(['listen', 'port'])).toBe('PARLEY_LISTEN_PORT');
    expect(envName(['health', 'peerBehindAfterWaits'])).toBe('PARLEY_HEALTH_PEER_BEHIND_AFTER_WAITS');
    expect(envName(['listen', 'limits', 'maxPendingHandshakesPerAddress'])).toBe(
      'PARLEY_LISTEN_LIMITS_MAX_PENDING_HANDSHAKES_PER_ADDRESS',
    );
    const names = SETTINGS.flatMap((s) => (s.env ? [s.env] : []));
    expect(new Set(names).size).toBe(names.length);
    // Every setting outside a list's items has one, and none of them is warned about.
    expect(SETTINGS.filter((s) => s.env === null && !s.path.includes('[]'))).toEqual([]);
    const env = Object.fromEntries([...names, ...Object.keys(ENV_ALIASES)].map((n) => [n, 'x']));
    expect(unknownParleyEnv({ ...env, PARLEY_DATBASE: 'x' })).toEqual(['PARLEY_DATBASE']);
  });

  it('puts every variable at its setting', () => {
    for (const setting of SETTINGS) {
      if (setting.env === null) continue;
      const text = { number: '42', boolean: 'true', list: 'a,b', json: '[]', enum: 'x', string: 'x' }[
        setting.kind
      ];
      const { input, fromEnv } = applyEnv({}, { [setting.env]: text });
      const value = setting.path.reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], input);
      const expected = { number: 42, boolean: true, list: ['a', 'b'], json: [], enum: 'x', string: 'x' }[
        setting.kind
      ];
      expect(value, setting.env).toEqual(expected);
      expect(fromEnv.get(setting.path.join('.'))).toBe(setting.env);
    }
  });

  it('overrides the file, validated like it, for settings of every type', () => {
    const config = load(
      { address: me.address, privateKeySeed: me.seedHex, listen: { port: 7100 }, health: { downPhi: 8 } },
      {
        PARLEY_LISTEN_PORT: '7301',
        PARLEY_LISTEN_HOST: '127.0.0.2',
        PARLEY_HEALTH_DOWN_PHI: '9.5',
        PARLEY_HEALTH_CLOSE_ON_DOWN: 'false',
        PARLEY_ALLOWED_HOSTS: 'parley.example.com, Other.Example',
        PARLEY_PEERS: JSON.stringify([{ address: peer.address, name: 'VASP B', publicKey: '00'.repeat(32) }]),
        PARLEY_REPLICA_ID: 'r1',
        PARLEY_LISTEN_LIMITS_MAX_CONNECTIONS: '100',
        PARLEY_DATABASE: '',
      },
    );
    expect(config.listen).toMatchObject({ port: 7301, host: '127.0.0.2', limits: { maxConnections: 100 } });
    expect(config.health).toMatchObject({ downPhi: 9.5, closeOnDown: false });
    expect(config.allowedHosts).toEqual(['parley.example.com', 'other.example']);
    expect(config.peers.map((p) => p.name)).toEqual(['VASP B']);
    expect(config.replica?.id).toBe('r1');
    expect(config.database).toMatch(/^file:\/.*parley\.db$/); // an empty variable is ignored
    // The earlier short names still work.
    expect(
      load({ address: me.address, privateKeySeed: me.seedHex }, { PARLEY_PORT: '7302' }).listen.port,
    ).toBe(7302);
  });

  it('names the variable a bad value came from', () => {
    const base = { address: me.address, privateKeySeed: me.seedHex };
    expect(problem(() => load(base, { PARLEY_LISTEN_PORT: 'seventy' }))).toMatch(
      /listen\.port: .*\(from PARLEY_LISTEN_PORT\)/,
    );
    expect(problem(() => load(base, { PARLEY_HEALTH_CLOSE_ON_DOWN: 'yes' }))).toMatch(
      /\(from PARLEY_HEALTH_CLOSE_ON_DOWN\)/,
    );
    expect(problem(() => load(base, { PARLEY_PEERS: '[{"address":"nope"}]' }))).toMatch(
      /peers\.0\.address: .*\(from PARLEY_PEERS\)/,
    );
  });

  it('reads the key seed from a file beside the configuration, so the file holds no secret', () => {
    const { file, dir } = configFile({ address: me.address, privateKeySeedFile: 'key.hex' });
    writeFileSync(join(dir, 'key.hex'), `${me.seedHex}\n`);
    expect(loadNodeConfig(file, {}).privateKeySeed).toBe(me.seedHex);
    expect(loadNodeConfig(file, {})).not.toHaveProperty('privateKeySeedFile');
    writeFileSync(join(dir, 'key.hex'), 'not a key');
    expect(problem(() => loadNodeConfig(file, {}))).toMatch(
      /privateKeySeedFile: .*key\.hex: expected 32 bytes/,
    );
    expect(problem(() => load({ address: me.address, privateKeySeedFile: '/nonexistent/key' }, {}))).toMatch(
      /privateKeySeedFile: cannot read \/nonexistent\/key \(ENOENT\)/,
    );
  });

  it('reads the key seed from PARLEY_PRIVATE_KEY_SEED or PARLEY_PRIVATE_KEY_SEED_FILE, and wants exactly one', () => {
    expect(load({ address: me.address }, { PARLEY_PRIVATE_KEY_SEED: me.seedHex }).privateKeySeed).toBe(
      me.seedHex,
    );
    const { dir } = configFile({});
    writeFileSync(join(dir, 'seed'), me.seedHex);
    // The variable wins over the file's inline seed (it drops the other way of giving it).
    expect(
      load(
        { address: me.address, privateKeySeed: peer.seedHex },
        { PARLEY_PRIVATE_KEY_SEED_FILE: join(dir, 'seed') },
      ).privateKeySeed,
    ).toBe(me.seedHex);
    expect(problem(() => load({ address: me.address }, {}))).toMatch(/privateKeySeed: missing/);
    expect(
      problem(() => load({ address: me.address, privateKeySeed: me.seedHex, privateKeySeedFile: 'x' }, {})),
    ).toMatch(/not both/);
  });

  it('validates a content about to be written to a file as the node will read it (parley peer add)', () => {
    const { file, dir } = configFile({});
    writeFileSync(join(dir, 'key.hex'), me.seedHex);
    // The key file beside the configuration, whatever the working directory.
    expect(
      resolveNodeConfig({ address: me.address, privateKeySeedFile: 'key.hex' }, file, {}).privateKeySeed,
    ).toBe(me.seedHex);
    // The seed in the environment only: the file need not hold it.
    expect(
      resolveNodeConfig({ address: me.address }, file, { PARLEY_PRIVATE_KEY_SEED: me.seedHex }).address,
    ).toBe(me.address);
  });
});
