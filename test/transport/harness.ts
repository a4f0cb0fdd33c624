/**
 * Shared pieces of the transport tests: identities, servers with a directory, disposal of
 * everything a test opened, and bounded waits (a test fails instead of hanging).
 */
import { randomBytes } from 'node:crypto';
import { filter, firstValueFrom, type Observable, take, timeout } from 'rxjs';
import {
  channelAddress,
  encodeAddress,
  generatePrivateKey,
  type PrivateKey,
} from '../../src/protocol/index.js';
import type { LocalState } from '../../src/transport/handshake.js';
import type { Connection, PeerEntry } from '../../src/transport/types.js';
import {
  type ChannelServer,
  type ChannelServerOptions,
  createChannelServer,
} from '../../src/transport/ws-server.js';

/** Upper bound of any single wait in these tests: a broken test fails, it never hangs. */
export const WAIT_MS = 10_000;

/** A VASP identity for tests. */
export interface Identity {
  address: string;
  key: PrivateKey;
  /** What this identity announces in its handshakes. */
  state: LocalState;
}

/** A fresh identity with a random on-chain address and key. */
export function makeIdentity(epoch = `epoch-${randomBytes(4).toString('hex')}`): Identity {
  return {
    address: channelAddress(encodeAddress({ hrp: 'tlb', onchain: randomBytes(16) })),
    key: generatePrivateKey(),
    state: { epoch, openObjects: { count: randomBytes(1)[0] ?? 0, digest: randomBytes(8).toString('hex') } },
  };
}

/** Two identities, the first with the lexicographically lower address. */
export function orderedPair(): [Identity, Identity] {
  const a = makeIdentity();
  const b = makeIdentity();
  return a.address < b.address ? [a, b] : [b, a];
}

/** The directory entry of `who` (with `url` when it listens). */
export function entryOf(who: Identity, url?: string): PeerEntry {
  return { address: who.address, publicKeyHex: who.key.publicKey.hex, ...(url ? { url } : {}) };
}

/** Dial/server deps of `who`. */
export function depsOf(who: Identity, clock?: { now(): number }) {
  return { me: who.address, myKey: who.key, localState: () => who.state, ...(clock ? { clock } : {}) };
}

/** Things to dispose after each test, in reverse order. */
export function createLeftovers() {
  const items: Array<() => unknown> = [];
  return {
    add<T>(item: T, dispose: (item: T) => unknown): T {
      items.push(() => dispose(item));
      return item;
    },
    async drain(): Promise<void> {
      for (const dispose of items.splice(0).reverse()) await dispose();
    },
  };
}
export type Leftovers = ReturnType<typeof createLeftovers>;

/** Starts a listening server for `me` that knows `peers`; closed by `leftovers`. */
export async function startServer(
  leftovers: Leftovers,
  me: Identity,
  peers: readonly PeerEntry[],
  options: ChannelServerOptions = {},
  clock?: { now(): number },
): Promise<ChannelServer> {
  const directory = new Map(peers.map((p) => [p.address, p]));
  const server = leftovers.add(
    createChannelServer(options, { ...depsOf(me, clock), directory: (address) => directory.get(address) }),
    (s) => s.close(),
  );
  await server.listening;
  return server;
}

/** Rejects when `promise` takes longer than `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** The first value of `source` that matches, within {@link WAIT_MS}. */
export function first<T>(source: Observable<T>, predicate: (value: T) => boolean = () => true): Promise<T> {
  return firstValueFrom(source.pipe(filter(predicate), take(1), timeout(WAIT_MS)));
}

/** Closes a connection and waits until it is closed. */
export async function closeConnection(connection: Connection): Promise<void> {
  connection.close(1000, 'test done');
  await within(connection.closed, 'connection close');
}
