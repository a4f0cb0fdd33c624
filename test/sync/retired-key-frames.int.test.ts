/**
 * A peer's retired key verifies the histories a resync brings (what it signed before rotating),
 * never a sync frame itself: frames are live, and a leaked retired key must not let anyone speak
 * for the peer. A follower whose peer leads with frames signed by the retired key closes with
 * 4401 and answers nothing; the same frames signed with the current key are answered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProtocolServer } from '../../src/protocol/index.js';
import { acceptingRetiredKeys, inThreadVerifier } from '../../src/protocol/verify-pool.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncStore } from '../../src/sync/ports.js';
import { type ChannelSync, createChannelSync, type SyncLink } from '../../src/sync/resync.js';
import { peekFrame, serialExclusive, withTwoStores } from './in-memory.js';
import { type Party, party } from './signed-histories.js';

/** A link that delivers in order and records how it was closed. */
function recordingLink(deliver: (frame: string) => void): SyncLink & { closedWith: number[] } {
  const closedWith: number[] = [];
  return {
    state: 'open',
    closed: new Promise<never>(() => undefined),
    send(frame) {
      setImmediate(() => deliver(frame));
      return true;
    },
    writable: async () => undefined,
    close(code) {
      closedWith.push(code);
    },
    closedWith,
  };
}

describe('sync frames signed with a retired key', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  for (const signer of ['retired', 'current'] as const) {
    it(`are ${signer === 'retired' ? 'refused (4401)' : 'answered, when signed with the current key'}`, async () => {
      const a = party(0xa5);
      const bCurrent = party(0xb6);
      const bRetired: Party = { address: bCurrent.address, key: party(0xb6).key };
      const retired = new Map([[bCurrent.key.publicKey.hex, [bRetired.key.publicKey]]]);
      // A knows B's current key and lists its retired one, as a node configured after B rotated.
      const sa: ChannelSync = createChannelSync(
        { responseTimeoutMs: 2_000 },
        {
          me: a.address,
          peer: bCurrent.address,
          myKey: a.key,
          peerKey: bCurrent.key.publicKey,
          isServer: isProtocolServer(a.address, bCurrent.address),
          store: createSyncRepository(stores.a) as SyncStore,
          exclusive: serialExclusive(),
          isPending: () => false,
          dropPending: () => false,
          verifier: acceptingRetiredKeys(inThreadVerifier, retired),
          frameVerifier: inThreadVerifier,
        },
      );
      const b = signer === 'retired' ? bRetired : bCurrent;
      const sb: ChannelSync = createChannelSync(
        { responseTimeoutMs: 2_000 },
        {
          me: b.address,
          peer: a.address,
          myKey: b.key,
          peerKey: a.key.publicKey,
          isServer: isProtocolServer(b.address, a.address),
          store: createSyncRepository(stores.b) as SyncStore,
          exclusive: serialExclusive(),
          isPending: () => false,
          dropPending: () => false,
        },
      );
      const answered: string[] = [];
      const la = recordingLink((f) => {
        answered.push(peekFrame(f)._ObjectType ?? '?');
        sb.handleFrame(f, lb);
      });
      const lb = recordingLink((f) => sa.handleFrame(f, la));
      sa.attach(la);
      sb.attach(lb);
      try {
        const run = sb.run('test');
        if (signer === 'retired') {
          await expect(run).rejects.toMatchObject({ code: 'SYNC_TIMEOUT' });
          // Each frame refused so (the leader's SyncEnd after its timeout as well).
          expect(la.closedWith.length).toBeGreaterThan(0);
          expect(new Set(la.closedWith)).toEqual(new Set([4401]));
          expect(answered).toEqual([]);
        } else {
          expect((await run).outcome).toBe('in_sync');
          expect(la.closedWith).toEqual([]);
          expect(answered).toContain('SyncBeginAck');
        }
      } finally {
        await sa.close();
        await sb.close();
      }
    });
  }
});
