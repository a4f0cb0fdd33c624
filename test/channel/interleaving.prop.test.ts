import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChannelCore } from '../../src/channel/channel-core.js';
import { isParleyError } from '../../src/errors.js';
import { onchainHex, type PaymentObject } from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureLines } from '../helpers/fixtures.js';
import { coreFor, fixtureParties, tempSqliteStore } from '../helpers/parties.js';

type Side = 'A' | 'B';
type Message =
  | { kind: 'request'; to: Side; jws: string }
  | { kind: 'response'; to: Side; jws: string; cid: string };

type Action =
  | { op: 'propose'; side: Side }
  | { op: 'deliver'; pick: number; duplicate: boolean }
  | { op: 'retransmit'; side: Side };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ op: fc.constant('propose' as const), side: fc.constantFrom<Side>('A', 'B') }),
  fc.record({ op: fc.constant('deliver' as const), pick: fc.nat(), duplicate: fc.boolean() }),
  fc.record({ op: fc.constant('retransmit' as const), side: fc.constantFrom<Side>('A', 'B') }),
);

interface FlowLine {
  flow: string;
  step: number;
  request_jws: string;
}

describe.skipIf(!HAVE_FIXTURES)('both sides updating one object in any interleaving', () => {
  it('never lets two commands consume the same version, and both sides converge', async () => {
    const createJws = readFixtureLines<FlowLine>('flows.jsonl').find(
      (l) => l.flow === 'a' && l.step === 1,
    )!.request_jws;
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 60 }), async (actions) => {
        const parties = fixtureParties();
        const sa = await tempSqliteStore();
        const sb = await tempSqliteStore();
        try {
          const cores: Record<Side, ChannelCore> = {
            A: await coreFor(parties.A, parties.B, sa.store),
            B: await coreFor(parties.B, parties.A, sb.store),
          };
          const addressOf: Record<Side, string> = { A: parties.A.address, B: parties.B.address };
          const other = (s: Side): Side => (s === 'A' ? 'B' : 'A');
          const network: Message[] = [];
          let counter = 0;

          // A creates the payment (the captured create of flow a) and B accepts it.
          const created = await cores.A.sequenceSigned(createJws);
          const first = await cores.B.handleRequest(created.requestJws);
          await cores.A.handleResponse(first.responseJws);
          const referenceId = created.referenceId;

          const propose = async (side: Side): Promise<void> => {
            const head = await cores[side].head(referenceId);
            if (!head) return;
            const payment: PaymentObject = structuredClone(head.payment);
            const mine =
              onchainHex(payment.sender.address) === onchainHex(addressOf[side]) ? 'sender' : 'receiver';
            payment[mine].metadata = [...payment[mine].metadata, `${side}-${counter++}`];
            try {
              const out = await cores[side].sequence({ payment, readVersion: head.version });
              network.push({ kind: 'request', to: other(side), jws: out.requestJws });
            } catch (err) {
              if (!isParleyError(err, 'CHANNEL_DEPENDENCY_UNAVAILABLE')) throw err;
            }
          };
          const deliver = async (message: Message): Promise<void> => {
            if (message.kind === 'request') {
              const handled = await cores[message.to].handleRequest(message.jws);
              const cid = JSON.parse(Buffer.from(message.jws.split('.')[1]!, 'base64url').toString())
                .cid as string;
              network.push({ kind: 'response', to: other(message.to), jws: handled.responseJws, cid });
            } else {
              try {
                await cores[message.to].handleResponse(message.jws, message.cid);
              } catch (err) {
                if (!isParleyError(err, 'CHANNEL_UNKNOWN_RESPONSE')) throw err;
              }
            }
          };
          const retransmit = (side: Side): void => {
            for (const p of cores[side].pending())
              network.push({ kind: 'request', to: other(side), jws: p.requestJws });
          };

          for (const a of actions) {
            if (a.op === 'propose') await propose(a.side);
            else if (a.op === 'retransmit') retransmit(a.side);
            else if (network.length > 0) {
              const i = a.pick % network.length;
              const message = network[i]!;
              if (!a.duplicate) network.splice(i, 1);
              await deliver(message);
            }
          }
          // Quiesce: deliver everything, retransmitting what is still pending, until calm.
          for (let round = 0; round < 50; round++) {
            while (network.length > 0) await deliver(network.shift()!);
            if (cores.A.pending().length === 0 && cores.B.pending().length === 0) break;
            retransmit('A');
            retransmit('B');
          }
          expect(cores.A.pending()).toEqual([]);
          expect(cores.B.pending()).toEqual([]);
          await cores.A.drain();
          await cores.B.drain();

          expect(await sa.store.checkIntegrity()).toEqual([]);
          expect(await sb.store.checkIntegrity()).toEqual([]);
          const va = await sa.store.versions(parties.B.address, referenceId);
          const vb = await sb.store.versions(parties.A.address, referenceId);
          // No version is read by two successful commands: the chain is linear.
          const reads = va.map((v) => v.previousVersion).filter((v) => v !== null);
          expect(new Set(reads).size).toBe(reads.length);
          expect(va.map((v) => v.version)).toEqual(vb.map((v) => v.version));
          expect((await cores.A.head(referenceId))?.version).toBe((await cores.B.head(referenceId))?.version);
        } finally {
          await sa.dispose();
          await sb.dispose();
        }
      }),
      { numRuns: 25 },
    );
  });
});
