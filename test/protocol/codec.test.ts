import { describe, expect, it } from 'vitest';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import {
  type CommandRequestObject,
  type CommandResponseObject,
  canonicalJson,
  commandVersions,
  decodeJwsPayloadUnverified,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  jsonEqual,
  MAX_JSON_DEPTH,
  parseJson,
  sameCommand,
} from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureLines } from '../helpers/fixtures.js';

interface FlowLine {
  flow: string;
  step: number;
  request_jws: string;
  request_payload: unknown;
  response_jws: string;
  response_payload: unknown;
}
interface ErrorLine {
  scenario: string;
  step: number;
  request_jws?: string;
  request_body_raw?: string;
  request_payload: unknown;
  response_body: string;
  response_signed_by: string | null;
  response_payload: unknown;
}

function thrownCode(fn: () => unknown): ErrorCode | 'no error' | 'not a ParleyError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

const REF = 'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pgyqqqqqqqqqqqqqqspa3m_689465ca9fb477874898b7f7cbd62f6b';
const CID = 'a5506f201e6589f91b34d41e6996041f';

/** A JSON object the tests reach into and mutate freely. */
// biome-ignore lint/suspicious/noExplicitAny: mutation tests index arbitrary paths of untyped JSON
type LooseJson = Record<string, any>;

/** A valid create as the reference sends it (flow a, step 1). */
function baseRequest(): LooseJson {
  return {
    cid: CID,
    command: {
      _reads: {},
      _writes: { [REF]: CID },
      _ObjectType: 'PaymentCommand',
      payment: {
        sender: {
          address: 'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pg9skzctpv9skzcg9kmwta',
          status: { status: 'needs_kyc_data' },
          metadata: [],
          kyc_data: { payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' },
        },
        receiver: {
          address: 'lbr1pgfpyysjzgfpyysjzgfpyysjzgf3xycnzvf3xycsm957ne',
          status: { status: 'none' },
          metadata: [],
        },
        reference_id: REF,
        action: { amount: 1000, currency: 'TIK', action: 'charge', timestamp: 1795691995 },
        description: 'fixture flow a: A pays B',
      },
    },
    command_type: 'PaymentCommand',
    _ObjectType: 'CommandRequestObject',
  };
}

function mutated(mutate: (r: LooseJson) => void): string {
  const request = baseRequest();
  mutate(request);
  return JSON.stringify(request);
}

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { n: value };
  return value;
}

describe.skipIf(!HAVE_FIXTURES)('codec against the golden fixtures', () => {
  it('decodes every flows.jsonl payload to the recorded value and round-trips it', () => {
    const lines = readFixtureLines<FlowLine>('flows.jsonl');
    for (const line of lines) {
      const request = decodeRequest(decodeJwsPayloadUnverified(line.request_jws));
      expect(request).toEqual(line.request_payload);
      expect(decodeRequest(encodeRequest(request))).toEqual(request);
      expect(sameCommand(decodeRequest(encodeRequest(request)), request)).toBe(true);
      const response = decodeResponse(decodeJwsPayloadUnverified(line.response_jws));
      expect(response).toEqual(line.response_payload);
      expect(decodeResponse(encodeResponse(response))).toEqual(response);
    }
  });

  it('classifies every errors.jsonl request as the reference did', () => {
    const lines = readFixtureLines<ErrorLine>('errors.jsonl');
    for (const line of lines) {
      const text =
        line.request_jws !== undefined
          ? decodeJwsPayloadUnverified(line.request_jws)
          : line.request_body_raw!;
      switch (line.scenario) {
        case 'bad-json': // not JSON at all (the reference already refused it as not a JWS)
        case 'two-writes': // parsing_error in the reference
        case 'bad-type': // HTTP 500 in the reference; parsing_error here
          expect(thrownCode(() => decodeRequest(text))).toBe('PROTOCOL_MALFORMED_FRAME');
          break;
        case 'unknown-field': {
          const request = decodeRequest(text);
          expect(request.command.payment.sender.kyc_data).not.toHaveProperty('favourite_colour');
          expect(encodeRequest(request)).not.toContain('favourite_colour');
          break;
        }
        default:
          expect(decodeRequest(text)).toEqual(line.request_payload);
      }
      if (line.response_signed_by === 'B') {
        expect(decodeResponse(decodeJwsPayloadUnverified(line.response_body))).toEqual(line.response_payload);
      }
    }
  });

  it('tells a replay from a cid conflict', () => {
    const lines = readFixtureLines<ErrorLine>('errors.jsonl');
    const request = (scenario: string, step: number): CommandRequestObject => {
      const line = lines.find((l) => l.scenario === scenario && l.step === step)!;
      return decodeRequest(decodeJwsPayloadUnverified(line.request_jws!));
    };
    expect(sameCommand(request('dup-resend', 1), request('dup-resend', 2))).toBe(true);
    expect(request('cid-conflict', 1).cid).toBe(request('cid-conflict', 2).cid);
    expect(sameCommand(request('cid-conflict', 1), request('cid-conflict', 2))).toBe(false);
    expect(sameCommand(request('lost-state', 1), request('lost-state', 3))).toBe(true);
  });
});

describe('decodeRequest', () => {
  it('accepts the reference shape (Python separators, any key order)', () => {
    const text = JSON.stringify(baseRequest(), null, 1);
    expect(decodeRequest(text)).toEqual(baseRequest());
  });

  it('drops unknown fields at every level, including the stored-form members', () => {
    const request = decodeRequest(
      mutated((r) => {
        r['response'] = { status: 'success' };
        r['extra'] = 1;
        r['command']['_origin'] = 'lbr1…';
        r['command']['payment']['_version'] = 'v';
        r['command']['payment']['_ObjectType'] = 'PaymentObject';
        r['command']['payment']['sender']['extra'] = true;
        r['command']['payment']['sender']['kyc_data']['favourite_colour'] = 'blue';
        r['command']['payment']['sender']['status']['note'] = 'x';
        r['command']['payment']['action']['memo'] = 'x';
      }),
    );
    expect(request).toEqual(baseRequest());
  });

  it('keeps free-form KYC dictionaries as they are', () => {
    const request = decodeRequest(
      mutated((r) => {
        r['command']['payment']['sender']['kyc_data']['address'] = {
          city: 'Zürich',
          lines: ['a', 'b'],
          n: 1,
        };
      }),
    );
    expect(request.command.payment.sender.kyc_data?.address).toEqual({
      city: 'Zürich',
      lines: ['a', 'b'],
      n: 1,
    });
  });

  const bad: Array<[string, string]> = [
    ['non-JSON text', 'this is not json'],
    ['an empty string', ''],
    ['JSON null', 'null'],
    ['a JSON array', '[]'],
    ['a JSON number', '42'],
    ['truncated JSON', JSON.stringify(baseRequest()).slice(0, -1)],
    ['amount "ten"', mutated((r) => (r['command']['payment']['action']['amount'] = 'ten'))],
    ['amount "10" as a string', mutated((r) => (r['command']['payment']['action']['amount'] = '10'))],
    ['amount 0', mutated((r) => (r['command']['payment']['action']['amount'] = 0))],
    ['a negative amount', mutated((r) => (r['command']['payment']['action']['amount'] = -5))],
    ['a fractional amount', mutated((r) => (r['command']['payment']['action']['amount'] = 1.5))],
    ['an unsafe integer amount', mutated((r) => (r['command']['payment']['action']['amount'] = 2 ** 53))],
    ['amount true', mutated((r) => (r['command']['payment']['action']['amount'] = true))],
    ['a string timestamp', mutated((r) => (r['command']['payment']['action']['timestamp'] = '1795691995'))],
    ['an unknown _ObjectType', mutated((r) => (r['_ObjectType'] = 'SomethingElse'))],
    ['a missing _ObjectType', mutated((r) => delete r['_ObjectType'])],
    ['an unknown command _ObjectType', mutated((r) => (r['command']['_ObjectType'] = 'SampleCommand'))],
    ['an unknown command_type', mutated((r) => (r['command_type'] = 'SampleCommand'))],
    ['a missing cid', mutated((r) => delete r['cid'])],
    ['a numeric cid', mutated((r) => (r['cid'] = 12))],
    ['a missing payment', mutated((r) => delete r['command']['payment'])],
    ['a missing sender', mutated((r) => delete r['command']['payment']['sender'])],
    ['a missing reference_id', mutated((r) => delete r['command']['payment']['reference_id'])],
    ['missing metadata', mutated((r) => delete r['command']['payment']['receiver']['metadata'])],
    ['a non-string metadata item', mutated((r) => (r['command']['payment']['receiver']['metadata'] = [1]))],
    ['two _writes', mutated((r) => (r['command']['_writes']['other_ref'] = 'v2'))],
    ['no _writes', mutated((r) => (r['command']['_writes'] = {}))],
    ['two _reads', mutated((r) => (r['command']['_reads'] = { [REF]: 'v0', other: 'v1' }))],
    ['_writes as a list', mutated((r) => (r['command']['_writes'] = [[REF, CID]]))],
    ['a numeric version', mutated((r) => (r['command']['_writes'] = { [REF]: 5 }))],
    [
      'an unknown status',
      mutated((r) => (r['command']['payment']['receiver']['status'] = { status: 'settled' })),
    ],
    ['a bare status string', mutated((r) => (r['command']['payment']['receiver']['status'] = 'none'))],
    [
      'abort without abort_code',
      mutated((r) => (r['command']['payment']['receiver']['status'] = { status: 'abort' })),
    ],
    [
      'abort without abort_message',
      mutated((r) => (r['command']['payment']['receiver']['status'] = { status: 'abort', abort_code: 'x' })),
    ],
    [
      'abort_code on a non-abort status',
      mutated(
        (r) =>
          (r['command']['payment']['receiver']['status'] = {
            status: 'none',
            abort_code: 'x',
            abort_message: 'y',
          }),
      ),
    ],
    ['a KYC type robot', mutated((r) => (r['command']['payment']['sender']['kyc_data']['type'] = 'robot'))],
    [
      'a KYC without payload_type',
      mutated((r) => delete r['command']['payment']['sender']['kyc_data']['payload_type']),
    ],
    [
      'a KYC address string',
      mutated((r) => (r['command']['payment']['sender']['kyc_data']['address'] = 'Main St')),
    ],
    ['a numeric description', mutated((r) => (r['command']['payment']['description'] = 5))],
    [
      'nesting deeper than MAX_JSON_DEPTH',
      mutated((r) => (r['command']['payment']['sender']['kyc_data']['other'] = nested(MAX_JSON_DEPTH))),
    ],
    ['100k nested arrays', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
  ];
  it.each(bad)('rejects %s with PROTOCOL_MALFORMED_FRAME', (_name, text) => {
    expect(thrownCode(() => decodeRequest(text))).toBe('PROTOCOL_MALFORMED_FRAME');
  });

  it('rejects a non-string with PROTOCOL_MALFORMED_FRAME', () => {
    expect(thrownCode(() => decodeRequest(undefined as unknown as string))).toBe('PROTOCOL_MALFORMED_FRAME');
    expect(thrownCode(() => decodeRequest(baseRequest() as unknown as string))).toBe(
      'PROTOCOL_MALFORMED_FRAME',
    );
  });

  it('keeps the zod error as the cause', () => {
    try {
      decodeRequest(mutated((r) => (r['command']['payment']['action']['amount'] = 'ten')));
      expect.unreachable();
    } catch (err) {
      expect(isParleyError(err, 'PROTOCOL_MALFORMED_FRAME')).toBe(true);
      expect((err as Error).cause).toBeDefined();
    }
  });
});

describe('decodeResponse', () => {
  it('accepts success, command errors and null-cid protocol errors', () => {
    const ok = { _ObjectType: 'CommandResponseObject', cid: CID, status: 'success' };
    expect(decodeResponse(JSON.stringify(ok))).toEqual(ok);
    const failure = {
      cid: null,
      status: 'failure',
      error: {
        protocol_error: true,
        code: 'parsing_error',
        message: 'Unspecified error with code "parsing_error"',
      },
      _ObjectType: 'CommandResponseObject',
    };
    expect(decodeResponse(JSON.stringify(failure))).toEqual(failure);
  });

  const bad: Array<[string, unknown]> = [
    ['a request', baseRequest()],
    ['a missing cid', { _ObjectType: 'CommandResponseObject', status: 'success' }],
    ['status ok', { _ObjectType: 'CommandResponseObject', cid: CID, status: 'ok' }],
    ['failure without error', { _ObjectType: 'CommandResponseObject', cid: CID, status: 'failure' }],
    [
      'success with an error',
      {
        _ObjectType: 'CommandResponseObject',
        cid: CID,
        status: 'success',
        error: { protocol_error: false, code: 'x', message: 'y' },
      },
    ],
    [
      'the v1 spec error list',
      { _ObjectType: 'CommandResponseObject', cid: CID, status: 'failure', error: [{ code: 'x' }] },
    ],
    [
      'a string protocol_error',
      {
        _ObjectType: 'CommandResponseObject',
        cid: CID,
        status: 'failure',
        error: { protocol_error: 'true', code: 'x', message: 'y' },
      },
    ],
  ];
  it.each(bad)('rejects %s with PROTOCOL_MALFORMED_FRAME', (_name, value) => {
    expect(thrownCode(() => decodeResponse(JSON.stringify(value)))).toBe('PROTOCOL_MALFORMED_FRAME');
  });
});

describe('encodeRequest / encodeResponse', () => {
  it('writes compact canonical JSON with _ObjectType first', () => {
    const request = decodeRequest(JSON.stringify(baseRequest()));
    const text = encodeRequest(request);
    expect(text.startsWith('{"_ObjectType":"CommandRequestObject","cid":')).toBe(true);
    expect(text).not.toMatch(/": |, "/);
    expect(text).toContain('"command":{"_ObjectType":"PaymentCommand","_reads":{},"_writes":');
    expect(decodeRequest(text)).toEqual(request);
    // Key order of the input does not matter.
    const reordered = JSON.parse(JSON.stringify(request, Object.keys(request).reverse()));
    expect(encodeRequest({ ...reordered, command: request.command } as CommandRequestObject)).toBe(text);
  });

  it('writes non-ASCII as UTF-8 text, which the reference reads', () => {
    const request = decodeRequest(mutated((r) => (r['command']['payment']['description'] = 'Café €5 🙂')));
    expect(encodeRequest(request)).toContain('Café €5 🙂');
  });

  it('drops members outside the schema', () => {
    const request = { ...decodeRequest(JSON.stringify(baseRequest())), response: { status: 'success' } };
    expect(encodeRequest(request)).not.toContain('response');
  });

  it('refuses to encode an invalid frame with PROTOCOL_MALFORMED_FRAME', () => {
    const request = decodeRequest(JSON.stringify(baseRequest()));
    const invalid = { ...request, cid: 7 } as unknown as CommandRequestObject;
    expect(thrownCode(() => encodeRequest(invalid))).toBe('PROTOCOL_MALFORMED_FRAME');
    const response = {
      _ObjectType: 'CommandResponseObject',
      cid: null,
      status: 'failure',
    } as CommandResponseObject;
    expect(thrownCode(() => encodeResponse(response))).toBe('PROTOCOL_MALFORMED_FRAME');
  });

  it('encodes a response with its error', () => {
    const response: CommandResponseObject = {
      _ObjectType: 'CommandResponseObject',
      cid: CID,
      status: 'failure',
      error: { protocol_error: false, code: 'payment_wrong_status', message: 'm' },
    };
    expect(encodeResponse(response)).toBe(
      `{"_ObjectType":"CommandResponseObject","cid":"${CID}","error":{"code":"payment_wrong_status","message":"m","protocol_error":false},"status":"failure"}`,
    );
  });
});

describe('sameCommand, canonicalJson, jsonEqual, commandVersions', () => {
  it('compares parsed requests by value, ignoring key order', () => {
    const a = decodeRequest(JSON.stringify(baseRequest()));
    const b = decodeRequest(JSON.stringify(baseRequest(), null, 2));
    expect(sameCommand(a, b)).toBe(true);
    const c = decodeRequest(mutated((r) => (r['command']['payment']['description'] = 'changed')));
    expect(sameCommand(a, c)).toBe(false);
    const d = decodeRequest(mutated((r) => (r['command']['payment']['sender']['metadata'] = ['x'])));
    expect(sameCommand(a, d)).toBe(false);
  });

  it('treats requests that differ only in dropped fields as the same command', () => {
    const a = decodeRequest(JSON.stringify(baseRequest()));
    const b = decodeRequest(
      mutated((r) => (r['command']['payment']['sender']['kyc_data']['favourite_colour'] = 1)),
    );
    expect(sameCommand(a, b)).toBe(true);
  });

  it('writes canonical JSON and refuses values JSON cannot hold', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], _c: undefined, Z: {} })).toBe(
      '{"Z":{},"a":[true,null,"x"],"b":1}',
    );
    expect(thrownCode(() => canonicalJson({ a: Number.NaN }))).toBe('PROTOCOL_MALFORMED_FRAME');
    expect(thrownCode(() => canonicalJson({ a: 1n }))).toBe('PROTOCOL_MALFORMED_FRAME');
    expect(thrownCode(() => canonicalJson(nested(MAX_JSON_DEPTH + 1)))).toBe('PROTOCOL_MALFORMED_FRAME');
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(thrownCode(() => canonicalJson(cyclic))).toBe('PROTOCOL_MALFORMED_FRAME');
  });

  it('parses JSON with a depth limit', () => {
    expect(parseJson('{"a":[1]}')).toEqual({ a: [1] });
    expect(thrownCode(() => parseJson(JSON.stringify(nested(MAX_JSON_DEPTH + 1))))).toBe(
      'PROTOCOL_MALFORMED_FRAME',
    );
  });

  it('compares JSON values deeply', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual([], {})).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
    expect(jsonEqual('1', 1)).toBe(false);
  });

  it('extracts the versions a command reads and writes', () => {
    const create = decodeRequest(JSON.stringify(baseRequest()));
    expect(commandVersions(create.command)).toEqual({
      referenceId: REF,
      writeVersion: CID,
      readReferenceId: null,
      readVersion: null,
    });
    const update = decodeRequest(mutated((r) => (r['command']['_reads'] = { [REF]: 'v0' })));
    expect(commandVersions(update.command)).toMatchObject({ readReferenceId: REF, readVersion: 'v0' });
  });
});
