import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelCore } from '../../src/channel/channel-core.js';
import { decodeResponse, type PaymentObject, verifyJws } from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureLines } from '../helpers/fixtures.js';
import { coreFor, fixtureParties, tempSqliteStore } from '../helpers/parties.js';

interface ErrorLine {
  scenario: string;
  step: number;
  request_jws?: string;
  request_body_raw?: string;
  request_payload: {
    cid: string;
    command: { _reads: Record<string, string>; _writes: Record<string, string>; payment: PaymentObject };
  } | null;
  outcome: {
    http_status: number;
    status?: string;
    protocol_error?: boolean | null;
    code?: string | null;
    cid_is_null?: boolean;
  };
}

/** Scenarios owned by the HTTP transport (no X-REQUEST-ID), not by the channel logic. */
const TRANSPORT_ONLY = new Set(['no-request-id']);

describe.skipIf(!HAVE_FIXTURES)(
  'errors.jsonl: our receiving side answers as the reference (as B, from C)',
  () => {
    const lines = HAVE_FIXTURES ? readFixtureLines<ErrorLine>('errors.jsonl') : [];
    const scenarios = [...new Set(lines.map((l) => l.scenario))].filter((s) => !TRANSPORT_ONLY.has(s));
    const disposers: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const d of disposers.splice(0)) await d();
    });

    it.each(scenarios)('%s', async (scenario) => {
      const parties = fixtureParties();
      let side = await tempSqliteStore();
      disposers.push(side.dispose);
      let b: ChannelCore = await coreFor(parties.B, parties.C, side.store);
      const steps = lines.filter((l) => l.scenario === scenario).sort((x, y) => x.step - y.step);

      for (const step of steps) {
        if (scenario === 'lost-state' && step.step === 2) {
          // B loses all its state between step 1 and step 2.
          side = await tempSqliteStore();
          disposers.push(side.dispose);
          b = await coreFor(parties.B, parties.C, side.store);
        }
        if (scenario === 'stale-read' && step.step === 2) {
          // As in the capture, B has its own pending reaction that reads v0; B is the protocol
          // client towards C, so it yields and accepts C's update.
          const [ref, v0] = Object.entries(step.request_payload!.command._reads)[0]!;
          const head = await b.head(ref);
          expect(head?.version).toBe(v0);
          const mine = structuredClone(head!.payment);
          mine.receiver.status = { status: 'needs_kyc_data' };
          await b.sequence({ payment: mine, readVersion: v0 });
          expect(b.isServer).toBe(false);
        }

        const body = step.request_jws ?? step.request_body_raw ?? '';
        const handled = await b.handleRequest(body);
        const response = decodeResponse(verifyJws(handled.responseJws, parties.B.publicKey));
        const expected = step.outcome;
        if (scenario === 'bad-type') {
          // The reference crashed (unsigned HTTP 500); we answer a signed parsing_error.
          expect(response).toMatchObject({
            status: 'failure',
            cid: null,
            error: { code: 'parsing_error', protocol_error: true },
          });
          continue;
        }
        expect(response.status).toBe(expected.status);
        expect(response.error?.code ?? null).toBe(expected.code ?? null);
        if (expected.status === 'failure')
          expect(response.error?.protocol_error).toBe(expected.protocol_error);
        expect(response.cid === null).toBe(expected.cid_is_null === true);
      }
      expect(await side.store.checkIntegrity()).toEqual([]);
    });

    it.skipIf(!HAVE_FIXTURES)(
      'protocol errors are never stored, command errors are stored and final',
      async () => {
        const parties = fixtureParties();
        const side = await tempSqliteStore();
        disposers.push(side.dispose);
        const b = await coreFor(parties.B, parties.C, side.store);
        const missingDep = lines.find((l) => l.scenario === 'missing-dep')!;
        const wrongActor = lines.find((l) => l.scenario === 'wrong-actor')!;

        await b.handleRequest(missingDep.request_jws!);
        expect(
          await side.store.findCommand(parties.C.address, missingDep.request_payload!.cid),
        ).toBeUndefined();

        const first = await b.handleRequest(wrongActor.request_jws!);
        const stored = await side.store.findCommand(parties.C.address, wrongActor.request_payload!.cid);
        expect(stored).toMatchObject({
          status: 'failure',
          errorCode: 'payment_wrong_actor',
          direction: 'inbound',
        });
        // The same cid always gets the identical stored signed response.
        const again = await b.handleRequest(wrongActor.request_jws!);
        expect(again.responseJws).toBe(first.responseJws);
        expect(again.outcome.kind).toBe('replayed');
      },
    );
  },
);
