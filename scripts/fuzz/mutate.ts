/**
 * Seeded mutation of signed LIP-1 command frames, shared by `npm run fuzz` and
 * test/security/frame-fuzz.test.ts. The same seed gives the same frames.
 */
import { createPaymentObject } from '../../src/business/index.js';
import { encodeRequest, type PrivateKey, signJws } from '../../src/protocol/index.js';

/** xorshift32: a small deterministic generator in [0, 1). */
export type Rng = () => number;

export function xorshift32(seed: number): Rng {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4_294_967_296;
  };
}

const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)]!;

/** One valid signed request of the corpus, with the cid and reference id it carries. */
export interface SeedFrame {
  jws: string;
  cid: string;
  referenceId: string;
}

/** `count` valid signed payment commands from `sender` to `receiver`, as a real peer sends them. */
export function seedCorpus(
  rng: Rng,
  count: number,
  sender: string,
  receiver: string,
  key: PrivateKey,
): SeedFrame[] {
  return Array.from({ length: count }, (_, i) => {
    const payment = createPaymentObject({
      me: sender,
      meSubaddressHex: '0000000000000001',
      to: receiver,
      toSubaddressHex: '0000000000000002',
      amount: 1 + i,
      currency: 'TIK',
    });
    const cid = Array.from({ length: 4 }, () =>
      int(rng, 2 ** 32)
        .toString(16)
        .padStart(8, '0'),
    ).join('');
    const jws = signJws(
      encodeRequest({
        _ObjectType: 'CommandRequestObject',
        cid,
        command_type: 'PaymentCommand',
        command: {
          _ObjectType: 'PaymentCommand',
          _reads: {},
          _writes: { [payment.reference_id]: cid },
          payment,
        },
      }),
      key,
    );
    return { jws, cid, referenceId: payment.reference_id };
  });
}

/** A mutated frame: its text and how it was made. */
export interface Mutant {
  text: string;
  op: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const WRONG_VALUES: readonly Json[] = [
  null,
  true,
  0,
  -1,
  1.5,
  'x',
  '',
  [],
  {},
  [1, 2],
  { _ObjectType: 'PaymentCommand' },
  '\u0000\uffff',
  'a'.repeat(10_000),
];
const AMOUNTS: readonly Json[] = [-1, 0, 1.25, 1e21, Number.MAX_SAFE_INTEGER + 2, '5', 'NaN', null];
const OBJECT_TYPES = ['CommandResponseObject', 'PaymentCommand', 'X', '', 'commandrequestobject'];

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function unb64(segment: string): string {
  return Buffer.from(segment, 'base64url').toString('utf8');
}

/** Every [container, key] pair reachable in `value`. */
function slots(value: Json, out: Array<[Record<string, Json> | Json[], string | number]> = []) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push([value, i]);
      slots(v, out);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push([value, k]);
      slots(v, out);
    }
  }
  return out;
}

function deep(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/** A JSON-level change of the decoded payload; returns the new payload text. */
function mutatePayload(rng: Rng, payloadText: string): { text: string; op: string } {
  const choice = int(rng, 9);
  if (choice === 0) return { text: deep(rng() < 0.05 ? 100_000 : 2_000), op: 'json-deep' };
  if (choice === 1) return { text: payloadText.slice(0, int(rng, payloadText.length)), op: 'json-cut' };
  const payload = JSON.parse(payloadText) as Json;
  const all = slots(payload);
  const [container, key] = pick(rng, all);
  const set = (v: Json) => {
    (container as Record<string | number, Json>)[key] = v;
  };
  switch (choice) {
    case 2:
      if (Array.isArray(container)) container.splice(Number(key), 1);
      else delete container[key as string];
      return { text: JSON.stringify(payload), op: 'json-delete' };
    case 3:
      set(pick(rng, WRONG_VALUES));
      return { text: JSON.stringify(payload), op: 'json-wrong-type' };
    case 4: {
      const p = payload as { command?: { payment?: { action?: Record<string, Json> } } };
      if (p.command?.payment?.action) p.command.payment.action['amount'] = pick(rng, AMOUNTS);
      const text = JSON.stringify(payload);
      return {
        text: rng() < 0.3 ? text.replace(/"amount":[^,}]*/, '"amount":1e400') : text,
        op: 'json-amount',
      };
    }
    case 5:
      (payload as Record<string, Json>)['_ObjectType'] = pick(rng, OBJECT_TYPES);
      return { text: JSON.stringify(payload), op: 'json-object-type' };
    case 6: {
      const depth = int(rng, 5_000);
      set('\u0000nest\u0000');
      const nested = `${'{"a":'.repeat(depth)}${JSON.stringify(pick(rng, WRONG_VALUES))}${'}'.repeat(depth)}`;
      return { text: JSON.stringify(payload).replace('"\\u0000nest\\u0000"', nested), op: 'json-nest' };
    }
    case 7:
      set(JSON.parse(JSON.stringify(payload)) as Json);
      return { text: JSON.stringify(payload), op: 'json-duplicate' };
    default: {
      const text = JSON.stringify(payload);
      const at = int(rng, text.length);
      return {
        text: `${text.slice(0, at)}${pick(rng, ['"', '{', '}', ',', '\\', '\u0000', '__proto__'])}${text.slice(at)}`,
        op: 'json-byte',
      };
    }
  }
}

/**
 * One mutant of `frame`: byte-level (bit flips, truncation, duplicated segments, splices,
 * garbage) or JSON-level on the payload, re-signed with `signer` (the authenticated peer's key)
 * or left with the old signature. A few frames are sent unchanged (replays).
 */
export function mutate(rng: Rng, frame: string, other: string, signer: PrivateKey): Mutant {
  const [header = '', payload = '', signature = ''] = frame.split('.');
  const choice = int(rng, 100);
  if (choice < 2) return { text: frame, op: 'replay' };
  if (choice < 17) {
    const bytes = Buffer.from(frame, 'utf8');
    for (let i = 1 + int(rng, 8); i > 0; i--) {
      const at = int(rng, bytes.length);
      bytes[at] = bytes[at]! ^ (1 << int(rng, 8));
    }
    return { text: bytes.toString('utf8'), op: 'bit-flip' };
  }
  if (choice < 25) return { text: frame.slice(0, int(rng, frame.length)), op: 'truncate' };
  if (choice < 33) {
    const parts = [header, payload, signature];
    const at = int(rng, 3);
    parts.splice(at, 0, parts[at]!);
    return { text: parts.join('.'), op: 'duplicate-segment' };
  }
  if (choice < 38) {
    const cut = int(rng, frame.length);
    return { text: `${frame.slice(0, cut)}${other.slice(int(rng, other.length))}`, op: 'splice' };
  }
  if (choice < 42) {
    const garbage = randomGarbage(rng, 1 + int(rng, 2_000));
    return { text: rng() < 0.5 ? garbage : `${header}.${b64(garbage)}.${signature}`, op: 'garbage' };
  }
  const mutated = mutatePayload(rng, unb64(payload));
  if (rng() < 0.6) return { text: signJws(mutated.text, signer), op: `${mutated.op}+signed` };
  return { text: `${header}.${b64(mutated.text)}.${signature}`, op: `${mutated.op}+unsigned` };
}

function randomGarbage(rng: Rng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++)
    out += String.fromCharCode(rng() < 0.9 ? 32 + int(rng, 95) : int(rng, 0xd7ff));
  return out;
}
