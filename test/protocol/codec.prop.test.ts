import { fc, it } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import {
  type CommandResponseObject,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  sameCommand,
} from '../../src/protocol/index.js';
import { arbCommandRequestObject, arbHex16, arbText } from '../helpers/arbitraries.js';

const arbResponse: fc.Arbitrary<CommandResponseObject> = fc.oneof(
  fc.record({
    _ObjectType: fc.constant('CommandResponseObject' as const),
    cid: arbHex16,
    status: fc.constant('success' as const),
  }),
  fc.record({
    _ObjectType: fc.constant('CommandResponseObject' as const),
    cid: fc.option(arbHex16, { nil: null }),
    status: fc.constant('failure' as const),
    error: fc.record({ protocol_error: fc.boolean(), code: arbText(), message: arbText() }),
  }),
);

/** Replaces the value at a random path of a JSON tree. */
function replaceAt(root: unknown, pick: number, value: unknown): unknown {
  const paths: Array<Array<string | number>> = [];
  const walk = (node: unknown, path: Array<string | number>): void => {
    paths.push(path);
    if (Array.isArray(node)) {
      for (const [i, child] of node.entries()) walk(child, [...path, i]);
    } else if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) walk(child, [...path, key]);
    }
  };
  walk(root, []);
  const path = paths[pick % paths.length]!;
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = value;
  return copy;
}

function decodesOrMalformed(decode: () => unknown): boolean {
  try {
    decode();
    return true;
  } catch (err) {
    return isParleyError(err, 'PROTOCOL_MALFORMED_FRAME');
  }
}

describe('codec properties', () => {
  it.prop([arbCommandRequestObject])('decodeRequest(encodeRequest(r)) equals r', (request) => {
    const text = encodeRequest(request);
    const decoded = decodeRequest(text);
    expect(decoded).toEqual(request);
    expect(sameCommand(decoded, request)).toBe(true);
    // Canonical: encoding the decoded value gives the same text.
    expect(encodeRequest(decoded)).toBe(text);
  });

  it.prop([arbCommandRequestObject])('decodes the reference spelling (Python separators) too', (request) => {
    expect(decodeRequest(JSON.stringify(request, null, 1))).toEqual(request);
  });

  it.prop([arbResponse])('decodeResponse(encodeResponse(r)) equals r', (response) => {
    expect(decodeResponse(encodeResponse(response))).toEqual(response);
  });

  it.prop([arbCommandRequestObject, fc.nat(), fc.jsonValue({ maxDepth: 3 })])(
    'a request with any member replaced decodes or fails with PROTOCOL_MALFORMED_FRAME',
    (request, pick, value) => {
      const text = JSON.stringify(replaceAt(request, pick, value));
      expect(decodesOrMalformed(() => decodeRequest(text))).toBe(true);
      expect(decodesOrMalformed(() => decodeResponse(text))).toBe(true);
    },
  );

  it.prop([fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json())])(
    'any text decodes or fails with PROTOCOL_MALFORMED_FRAME',
    (text) => {
      expect(decodesOrMalformed(() => decodeRequest(text))).toBe(true);
      expect(decodesOrMalformed(() => decodeResponse(text))).toBe(true);
    },
  );
});
