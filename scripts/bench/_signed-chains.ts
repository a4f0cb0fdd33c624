/**
 * Signed payment chains for the benchmarks that fill a store directly: one chain is built once
 * as a template (encoded text with placeholder ids), then signed many times with fresh
 * reference ids and cids, each as the commit items a channel would have written; and the two
 * sides' channel syncs over an in-memory link.
 */
import { randomBytes } from 'node:crypto';
import { createAutoBusiness, createPaymentObject, nextPaymentVersion } from '../../src/business/index.js';
import { isOpen } from '../../src/objects/index.js';
import {
  type CommandRequestObject,
  encodeAddress,
  encodeRequest,
  encodeResponse,
  generatePrivateKey,
  isProtocolServer,
  type PaymentObject,
  type PrivateKey,
  signJwsAsync,
} from '../../src/protocol/index.js';
import type { JwsVerifier } from '../../src/protocol/verify-pool.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { CommitItem, ParleyStore } from '../../src/store/types.js';
import { type ChannelSync, createChannelSync, type SyncLink } from '../../src/sync/resync.js';
import { memoryLink, serialExclusive } from '../../test/sync/in-memory.js';

export interface Party {
  address: string;
  key: PrivateKey;
}

export const party = (byte: number): Party => ({
  address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(byte) }),
  key: generatePrivateKey(),
});

export interface TemplateStep {
  proposer: Party;
  other: Party;
  request: string;
  response: string;
  payment: PaymentObject;
}

export interface ChainTemplate {
  ref: string;
  cids: string[];
  steps: TemplateStep[];
}

/**
 * One payment chain of at most `steps` commands, as encoded text with placeholders to rewrite.
 * With `close`, the parties take turns until the payment is closed (the chain must close within
 * `steps`); without, the chain stops where the sender's next move runs out.
 */
export async function chainTemplate(
  sender: Party,
  receiver: Party,
  { steps, close }: { steps: number; close: boolean },
): Promise<ChainTemplate> {
  const business = createAutoBusiness();
  let payment = createPaymentObject({
    me: sender.address,
    meSubaddressHex: '0000000000000001',
    to: receiver.address,
    toSubaddressHex: '0000000000000002',
    amount: 100,
    currency: 'TIK',
    referenceSuffix: 'f'.repeat(32),
  });
  const ref = payment.reference_id;
  const out: TemplateStep[] = [];
  const cids: string[] = [];
  let turn: [Party, Party] = [sender, receiver];
  for (let i = 0; i < steps; i++) {
    if (i > 0) {
      if (close && !isOpen(payment)) break;
      const next = await nextPaymentVersion({ payment, me: turn[0].address, business });
      if (next) payment = next;
      else if (!close) break;
      else {
        turn = [turn[1], turn[0]];
        const other = await nextPaymentVersion({ payment, me: turn[0].address, business });
        if (!other) break;
        payment = other;
      }
    }
    const cid = `${i.toString(16).padStart(2, '0')}${'e'.repeat(30)}`;
    const request: CommandRequestObject = {
      _ObjectType: 'CommandRequestObject',
      cid,
      command_type: 'PaymentCommand',
      command: {
        _ObjectType: 'PaymentCommand',
        _reads: i === 0 ? {} : { [ref]: cids[i - 1]! },
        _writes: { [ref]: cid },
        payment,
      },
    };
    cids.push(cid);
    out.push({
      proposer: turn[0],
      other: turn[1],
      request: encodeRequest(request),
      response: encodeResponse({ _ObjectType: 'CommandResponseObject', cid, status: 'success' }),
      payment,
    });
    turn = [turn[1], turn[0]];
  }
  if (close && isOpen(payment)) throw new Error('the template payment did not close');
  return { ref, cids, steps: out };
}

/** Signs one object's chain from the template with a fresh reference id and cids. */
export async function signChain(t: ChainTemplate, me: Party, peer: Party): Promise<CommitItem[]> {
  const ref = t.ref.replace('f'.repeat(32), randomBytes(16).toString('hex'));
  const cids = t.cids.map(() => randomBytes(16).toString('hex'));
  const rewrite = (text: string): string => {
    let out = text.split(t.ref).join(ref);
    t.cids.forEach((c, i) => {
      out = out.split(c).join(cids[i]!);
    });
    return out;
  };
  return Promise.all(
    t.steps.map(async (s, i): Promise<CommitItem> => {
      const [request, response] = await Promise.all([
        signJwsAsync(rewrite(s.request), s.proposer.key),
        signJwsAsync(rewrite(s.response), s.other.key),
      ]);
      const payment = JSON.parse(rewrite(JSON.stringify(s.payment))) as PaymentObject;
      const version = i === 0 ? null : cids[i - 1]!;
      return {
        command: {
          peer: peer.address,
          cid: cids[i]!,
          direction: s.proposer === me ? 'outbound' : 'inbound',
          referenceId: ref,
          readVersion: version,
          writeVersion: cids[i]!,
          requestJws: request,
          responseJws: response,
          status: 'success',
          errorCode: null,
        },
        version: {
          peer: peer.address,
          referenceId: ref,
          version: cids[i]!,
          previousVersion: version,
          payment: JSON.stringify(payment),
          open: isOpen(payment),
        },
      };
    }),
  );
}

/** The two sides' channel syncs over an in-memory link; `peerSyncMethods` as their hellos named. */
export function wireSyncPair(
  a: { me: Party; peer: Party; store: ParleyStore },
  b: { me: Party; peer: Party; store: ParleyStore },
  verifier: JwsVerifier,
  peerSyncMethods?: string[],
): { sa: ChannelSync; sb: ChannelSync } {
  const make = (side: typeof a): ChannelSync =>
    createChannelSync(
      {},
      {
        me: side.me.address,
        peer: side.peer.address,
        myKey: side.me.key,
        peerKey: side.peer.key.publicKey,
        isServer: isProtocolServer(side.me.address, side.peer.address),
        store: createSyncRepository(side.store),
        exclusive: serialExclusive(),
        isPending: () => false,
        dropPending: () => false,
        verifier,
      },
    );
  const sa = make(a);
  const sb = make(b);
  const speaks = peerSyncMethods ? { peerSyncMethods } : {};
  const la: SyncLink = { ...memoryLink((f) => sb.handleFrame(f, lb), setImmediate), ...speaks };
  const lb: SyncLink = { ...memoryLink((f) => sa.handleFrame(f, la), setImmediate), ...speaks };
  sa.attach(la);
  sb.attach(lb);
  return { sa, sb };
}
