import { afterEach, describe, expect, it } from 'vitest';
import { decodeResponse, signJws, verifyJws } from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureLines } from '../helpers/fixtures.js';
import { coreFor, fixtureParties, tempSqliteStore } from '../helpers/parties.js';

interface ErrorLine {
  scenario: string;
  request_payload: Record<string, unknown> | null;
}

describe.skipIf(!HAVE_FIXTURES)('bad input gets a coded protocol error and changes nothing', () => {
  const disposers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  const valid = HAVE_FIXTURES
    ? readFixtureLines<ErrorLine>('errors.jsonl').find((l) => l.scenario === 'unknown-field')!
        .request_payload!
    : {};

  // biome-ignore lint/suspicious/noExplicitAny: tests reach into arbitrary JSON to break it
  type Json = Record<string, any>;
  const mutate = (fn: (p: Json) => void): string => {
    const copy = structuredClone(valid) as Json;
    fn(copy);
    return JSON.stringify(copy);
  };

  const cases: Array<[string, () => string, string]> = [
    ['non-JSON payload', () => 'not json at all {', 'parsing_error'],
    ['JSON that is not an object', () => '[1,2,3]', 'parsing_error'],
    [
      'wrong type (amount as string)',
      () =>
        mutate((p) => {
          p['command'].payment.action.amount = 'ten';
        }),
      'parsing_error',
    ],
    [
      'wrong type (cid as number)',
      () =>
        mutate((p) => {
          p['cid'] = 42;
        }),
      'parsing_error',
    ],
    [
      'unknown _ObjectType',
      () =>
        mutate((p) => {
          p['_ObjectType'] = 'LaunchMissiles';
        }),
      'parsing_error',
    ],
    [
      'unknown command _ObjectType',
      () =>
        mutate((p) => {
          p['command']._ObjectType = 'Nope';
        }),
      'parsing_error',
    ],
    [
      'missing payment',
      () =>
        mutate((p) => {
          delete p['command'].payment;
        }),
      'parsing_error',
    ],
    [
      'missing receiver',
      () =>
        mutate((p) => {
          delete p['command'].payment.receiver;
        }),
      'parsing_error',
    ],
    [
      'missing cid',
      () =>
        mutate((p) => {
          delete p['cid'];
        }),
      'parsing_error',
    ],
    [
      'negative amount',
      () =>
        mutate((p) => {
          p['command'].payment.action.amount = -5;
        }),
      'parsing_error',
    ],
    [
      'abort without abort_code',
      () =>
        mutate((p) => {
          p['command'].payment.sender.status = { status: 'abort' };
        }),
      'parsing_error',
    ],
  ];

  it.each(cases)('%s', async (_name, payload, code) => {
    const parties = fixtureParties();
    const side = await tempSqliteStore();
    disposers.push(side.dispose);
    const b = await coreFor(parties.B, parties.C, side.store);
    const handled = await b.handleRequest(signJws(payload(), parties.C.key));
    const response = decodeResponse(verifyJws(handled.responseJws, parties.B.publicKey));
    expect(response).toMatchObject({ status: 'failure', cid: null, error: { protocol_error: true, code } });
    expect(handled.outcome.kind).toBe('protocol_error');
    expect(await side.store.countOpenObjects(parties.C.address)).toBe(0);
    expect(await side.store.checkIntegrity()).toEqual([]);
  });

  it('an oversized frame is refused before it is verified or parsed (limit configurable)', async () => {
    const parties = fixtureParties();
    const side = await tempSqliteStore();
    disposers.push(side.dispose);
    const b = await coreFor(parties.B, parties.C, side.store, { maxFrameBytes: 2048 });
    const big = mutate((p) => {
      p['command'].payment.description = 'x'.repeat(4096);
    });
    const handled = await b.handleRequest(signJws(big, parties.C.key));
    const response = decodeResponse(verifyJws(handled.responseJws, parties.B.publicKey));
    expect(response).toMatchObject({ status: 'failure', cid: null, error: { code: 'parsing_error' } });
    expect(handled.outcome).toMatchObject({ kind: 'protocol_error' });
    expect(await side.store.countOpenObjects(parties.C.address)).toBe(0);

    // The same frame under the default 1 MiB limit is accepted.
    const roomy = await coreFor(parties.B, parties.C, side.store);
    const ok = await roomy.handleRequest(signJws(big, parties.C.key));
    expect(decodeResponse(verifyJws(ok.responseJws, parties.B.publicKey)).status).toBe('success');
  });

  it('a frame signed by someone else is refused with invalid_signature', async () => {
    const parties = fixtureParties();
    const side = await tempSqliteStore();
    disposers.push(side.dispose);
    const b = await coreFor(parties.B, parties.C, side.store);
    const handled = await b.handleRequest(signJws(JSON.stringify(valid), parties.A.key));
    const response = decodeResponse(verifyJws(handled.responseJws, parties.B.publicKey));
    expect(response).toMatchObject({ status: 'failure', cid: null, error: { code: 'invalid_signature' } });
    expect(await side.store.countOpenObjects(parties.C.address)).toBe(0);
  });
});
