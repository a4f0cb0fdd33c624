import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChannelCore,
  type ChannelCoreOptions,
  createChannelCore,
} from '../../src/channel/channel-core.js';
import {
  channelAddress,
  type PrivateKey,
  type PublicKey,
  privateKeyFromJwk,
  publicKeyFromHex,
} from '../../src/protocol/index.js';
import type { JwsVerifier } from '../../src/protocol/verify-pool.js';
import { openStore } from '../../src/store/open-store.js';
import type { ParleyStore } from '../../src/store/types.js';
import type { Party } from '../sync/signed-histories.js';
import { readFixtureJson } from './fixtures.js';

export interface FixtureParty {
  name: string;
  address: string;
  key: PrivateKey;
  publicKey: PublicKey;
}

interface KeysFile {
  parties: Record<
    string,
    { bech32: string; private_jwk: Record<string, string>; public_key_hex: string; address_hex: string }
  >;
}

/** The test-only identities of the golden fixtures (A, B and C). */
export function fixtureParties(): Record<'A' | 'B' | 'C', FixtureParty> {
  const keys = readFixtureJson<KeysFile>('keys.json');
  const party = (name: 'A' | 'B' | 'C'): FixtureParty => {
    const p = keys.parties[name]!;
    return {
      name,
      address: channelAddress(p.bech32),
      key: privateKeyFromJwk(p.private_jwk),
      publicKey: publicKeyFromHex(p.public_key_hex),
    };
  };
  return { A: party('A'), B: party('B'), C: party('C') };
}

/** A fresh SQLite store in its own temp directory; `dispose` closes and deletes it. */
export async function tempSqliteStore(): Promise<{
  store: ParleyStore;
  path: string;
  dispose(): Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-test-'));
  const path = join(dir, 'node.db');
  const store = await openStore({ url: `file:${path}` });
  return {
    store,
    path,
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The channel core of `me` towards `other`, on `store`. */
export async function coreFor(
  me: FixtureParty,
  other: FixtureParty,
  store: ParleyStore,
  options: Partial<ChannelCoreOptions> = {},
): Promise<ChannelCore> {
  await store.upsertPeer({ address: other.address, publicKeyHex: other.publicKey.hex });
  const core = createChannelCore(
    { me: me.address, peer: other.address, ...options },
    { store, myKey: me.key, peerKey: other.publicKey },
  );
  await core.init();
  return core;
}

/** The channel core of `me` towards `other` (test parties of `signed-histories.ts`), on `store`. */
export async function coreOfParty(
  me: Party,
  other: Party,
  store: ParleyStore,
  verifier?: JwsVerifier,
): Promise<ChannelCore> {
  await store.upsertPeer({ address: other.address, publicKeyHex: other.key.publicKey.hex });
  const core = createChannelCore(
    { me: me.address, peer: other.address },
    { store, myKey: me.key, peerKey: other.key.publicKey, ...(verifier ? { verifier } : {}) },
  );
  await core.init();
  return core;
}
