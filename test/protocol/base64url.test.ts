import { fc, it } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import {
  base64UrlDecode,
  base64UrlEncode,
  base64UrlEncodeText,
  isBase64Url,
  tryBase64UrlDecode,
  tryDecodeUtf8,
} from '../../src/protocol/index.js';

describe('base64url', () => {
  it.prop([fc.uint8Array({ maxLength: 100 })])('decode(encode(b)) equals b', (bytes) => {
    const text = base64UrlEncode(bytes);
    expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
    expect(Buffer.from(base64UrlDecode(text))).toEqual(Buffer.from(bytes));
  });

  it('encodes text as UTF-8', () => {
    expect(base64UrlEncodeText('{"alg":"EdDSA"}')).toBe('eyJhbGciOiJFZERTQSJ9');
    expect(tryDecodeUtf8(base64UrlDecode(base64UrlEncodeText('Café 🙂')))).toBe('Café 🙂');
  });

  it.each([
    ['padding', 'eyJhbGciOiJFZERTQSJ9=='],
    ['=', 'YQ=='],
    ['+ from standard base64', 'a+b_'],
    ['/ from standard base64', 'a/b_'],
    ['whitespace', 'YWJj ZA'],
    ['an impossible length', 'YWJjZ'],
    ['non-zero padding bits', 'YR'],
    ['non-ASCII', 'YWJj\u00e9'],
  ])('rejects %s', (_name, text) => {
    expect(isBase64Url(text)).toBe(false);
    expect(tryBase64UrlDecode(text)).toBeUndefined();
    try {
      base64UrlDecode(text, 'PROTOCOL_NOT_JWS');
      expect.unreachable();
    } catch (err) {
      expect(isParleyError(err, 'PROTOCOL_NOT_JWS')).toBe(true);
    }
  });

  it('accepts the empty string and canonical forms', () => {
    expect(isBase64Url('')).toBe(true);
    expect(isBase64Url('YQ')).toBe(true);
    expect(isBase64Url('YWI')).toBe(true);
  });

  it('refuses malformed UTF-8 and keeps a byte-order mark', () => {
    expect(tryDecodeUtf8(Uint8Array.from([0xc3, 0x28]))).toBeUndefined();
    expect(tryDecodeUtf8(Uint8Array.from([0xef, 0xbb, 0xbf, 0x41]))).toBe('\ufeffA');
  });
});
