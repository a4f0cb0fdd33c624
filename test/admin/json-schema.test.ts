/** The schema check the OpenAPI tests rely on finds what does not match (it can fail). */
import { describe, expect, it } from 'vitest';
import { adminOpenApi } from '../../src/admin/openapi.js';
import { answerProblems } from './checked-client.js';
import { schemaProblems } from './json-schema.js';

const doc = adminOpenApi('0') as unknown as Parameters<typeof answerProblems>[0];
const answer = (status: number, body: unknown) => ({ status, body, headers: {} });

describe('the OpenAPI answer check', () => {
  it('accepts a documented answer', () => {
    expect(answerProblems(doc, 'GET', '/admin/payments', answer(200, { payments: [] }))).toEqual([]);
    expect(
      answerProblems(
        doc,
        'GET',
        '/admin/payments/x',
        answer(404, { error: 'PAYMENT_UNKNOWN', message: 'no' }),
      ),
    ).toEqual([]);
  });

  it('refuses a missing member, a wrong type, an extra member, a value outside the enum, an undocumented status', () => {
    const status = { address: 'a', epoch: 'e', url: 'u', channels: [] };
    expect(answerProblems(doc, 'GET', '/admin/status', answer(200, status))).toEqual([]);
    const { address: _, ...noAddress } = status;
    expect(answerProblems(doc, 'GET', '/admin/status', answer(200, noAddress)).join()).toContain(
      'address: required',
    );
    expect(
      answerProblems(doc, 'GET', '/admin/status', answer(200, { ...status, epoch: 1 })).join(),
    ).toContain('expected string');
    expect(
      answerProblems(doc, 'GET', '/admin/status', answer(200, { ...status, extra: 1 })).join(),
    ).toContain('extra');
    const channel = { peer: 'p', state: 'gone', inflight: 0, openObjects: 0, peerEpoch: null };
    expect(
      answerProblems(doc, 'GET', '/admin/status', answer(200, { ...status, channels: [channel] })).join(),
    ).toContain('"gone"');
    expect(answerProblems(doc, 'GET', '/admin/status', answer(418, {})).join()).toContain(
      '418 is not documented',
    );
    expect(answerProblems(doc, 'GET', '/admin/status', answer(403, { message: 'no code' })).join()).toContain(
      'error: required',
    );
  });

  it('refuses a schema keyword it does not check', () => {
    expect(schemaProblems({}, { type: 'string', contentEncoding: 'base64' }, 'x').join()).toContain(
      'contentEncoding',
    );
  });
});
