import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelCore } from '../../src/channel/channel-core.js';
import { decodeResponse, verifyJws } from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureLines } from '../helpers/fixtures.js';
import { coreFor, type FixtureParty, fixtureParties, tempSqliteStore } from '../helpers/parties.js';

interface FlowLine {
  flow: string;
  step: number;
  from: 'A' | 'B';
  to: 'A' | 'B';
  request_jws: string;
  response_jws: string;
  request_payload: { cid: string; command: { payment: unknown } };
  response_payload: { cid: string | null; status: string; error?: { code: string; protocol_error: boolean } };
}

describe.skipIf(!HAVE_FIXTURES)('golden flows replayed through the channel logic (SQLite)', () => {
  const disposers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  const lines = HAVE_FIXTURES ? readFixtureLines<FlowLine>('flows.jsonl') : [];
  const flows = [...new Set(lines.map((l) => l.flow))];

  it.each(flows)(
    'flow %s: same decisions as the reference and the same final object on both sides',
    async (flow) => {
      const parties = fixtureParties();
      const sideA = await tempSqliteStore();
      const sideB = await tempSqliteStore();
      disposers.push(sideA.dispose, sideB.dispose);
      const cores: Record<'A' | 'B', ChannelCore> = {
        A: await coreFor(parties.A, parties.B, sideA.store),
        B: await coreFor(parties.B, parties.A, sideB.store),
      };
      const steps = lines.filter((l) => l.flow === flow).sort((a, b) => a.step - b.step);
      expect(steps.length).toBeGreaterThan(0);

      let referenceId = '';
      for (const step of steps) {
        const sender = cores[step.from];
        const receiver = cores[step.to];
        // The sender adopts its captured request byte for byte (as if it had just sequenced it).
        const outgoing = await sender.sequenceSigned(step.request_jws);
        expect(outgoing.cid).toBe(step.request_payload.cid);
        referenceId = outgoing.referenceId;

        // Our receiving side decides exactly as the reference did.
        const handled = await receiver.handleRequest(step.request_jws);
        const ours = decodeResponse(verifyJws(handled.responseJws, partyOf(parties, step.to).publicKey));
        expect(ours.status).toBe(step.response_payload.status);
        expect(ours.cid).toBe(step.response_payload.cid);
        expect(ours.error?.code).toBe(step.response_payload.error?.code);
        expect(handled.outcome.kind).toBe('committed');

        // The sender accepts the reference's own signed response (empty-header JWS).
        const result = await sender.handleResponse(step.response_jws);
        expect(result).toMatchObject({
          kind: 'final',
          cid: step.request_payload.cid,
          status: step.response_payload.status,
        });
      }

      const last = steps.at(-1)!;
      const headA = await cores.A.head(referenceId);
      const headB = await cores.B.head(referenceId);
      expect(headA?.version).toBe(last.request_payload.cid);
      expect(headB?.version).toBe(last.request_payload.cid);
      expect(headA?.payment).toEqual(last.request_payload.command.payment);
      expect(headB?.payment).toEqual(last.request_payload.command.payment);

      // Both signed logs hold the same request/response pairs for this object.
      const logA = await sideA.store.history(parties.B.address, referenceId);
      const logB = await sideB.store.history(parties.A.address, referenceId);
      expect(logA.map((r) => r.cid)).toEqual(steps.map((s) => s.request_payload.cid));
      expect(logB.map((r) => r.cid)).toEqual(steps.map((s) => s.request_payload.cid));
      expect(logA.map((r) => r.requestJws)).toEqual(logB.map((r) => r.requestJws));
      expect(cores.A.pending()).toEqual([]);
      expect(cores.B.pending()).toEqual([]);
      expect(await sideA.store.checkIntegrity()).toEqual([]);
      expect(await sideB.store.checkIntegrity()).toEqual([]);
      const open = await sideA.store.head(parties.B.address, referenceId);
      expect(open?.open).toBe(false);
    },
  );
});

function partyOf(parties: Record<'A' | 'B' | 'C', FixtureParty>, name: 'A' | 'B'): FixtureParty {
  return parties[name];
}
