import { describe, expect, it } from 'vitest';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import {
  actorOf,
  checkPaymentCommand,
  explainPaymentCommand,
  isFinal,
  isOpen,
  myRole,
  otherRole,
  type PaymentCommandInput,
  roleOf,
  withActor,
  withStatus,
  writeOnceViolations,
} from '../../src/objects/index.js';
import {
  commandVersions,
  decodeJwsPayloadUnverified,
  decodeRequest,
  encodeAddress,
  type PaymentObject,
  type PaymentStatus,
} from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureJson, readFixtureLines } from '../helpers/fixtures.js';

function thrownCode(fn: () => unknown): ErrorCode | 'no error' | 'not a ParleyError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

const onchain = (byte: number): Uint8Array => new Uint8Array(16).fill(byte);
const sub = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'latin1'));
const A = encodeAddress({ hrp: 'lbr', onchain: onchain(0x41) });
const B = encodeAddress({ hrp: 'lbr', onchain: onchain(0x42) });
const D = encodeAddress({ hrp: 'lbr', onchain: onchain(0xdd) });
const A_SUB = encodeAddress({ hrp: 'lbr', onchain: onchain(0x41), subaddress: sub('aaaaaaaa') });
const B_SUB = encodeAddress({ hrp: 'lbr', onchain: onchain(0x42), subaddress: sub('bbbbbbbb') });
const REF = `${A}_689465ca9fb477874898b7f7cbd62f6b`;

/** A pays B: A's create as the reference sends it. */
function created(): PaymentObject {
  return {
    sender: {
      address: A_SUB,
      status: { status: 'needs_kyc_data' },
      metadata: [],
      kyc_data: { payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' },
    },
    receiver: { address: B_SUB, status: { status: 'none' }, metadata: [] },
    reference_id: REF,
    action: { amount: 1000, currency: 'TIK', action: 'charge', timestamp: 1795691995 },
    description: 'A pays B',
  };
}

/** B's answer to the create: receiver soft_match with KYC and signature. */
function answered(): PaymentObject {
  const p = created();
  return {
    ...withActor(p, 'receiver', {
      status: { status: 'soft_match' },
      kyc_data: { payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' },
    }),
    recipient_signature: `${B}.${REF}.SIGNED`,
  };
}

/** B checks a create from A. */
const createFromA = (next: PaymentObject, referenceId = next.reference_id): PaymentCommandInput => ({
  me: B,
  other: A,
  origin: A,
  previous: undefined,
  next,
  referenceId,
});

/** B checks an update from A, reading `previous`. */
const updateFromA = (previous: PaymentObject, next: PaymentObject): PaymentCommandInput => ({
  me: B,
  other: A,
  origin: A,
  previous,
  next,
  referenceId: next.reference_id,
});

describe('checkPaymentCommand: creation', () => {
  it('accepts the reference create', () => {
    expect(checkPaymentCommand(createFromA(created()))).toBeNull();
  });

  it('accepts a create in which the creator is the receiver (a charge)', () => {
    const p = { ...created(), reference_id: `${B}_x` };
    expect(
      checkPaymentCommand({
        me: A,
        other: B,
        origin: B,
        previous: undefined,
        next: withStatus(withStatus(p, 'sender', { status: 'none' }), 'receiver', {
          status: 'needs_kyc_data',
        }),
        referenceId: p.reference_id,
      }),
    ).toBeNull();
  });

  it.each<PaymentStatus>(['needs_kyc_data', 'soft_match', 'ready_for_settlement'])(
    'rejects a creator that set the other side to %s with payment_wrong_status',
    (status) => {
      expect(checkPaymentCommand(createFromA(withStatus(created(), 'receiver', { status })))).toBe(
        'payment_wrong_status',
      );
    },
  );

  it('rejects the other side set to abort with payment_wrong_status', () => {
    const next = withStatus(created(), 'receiver', { status: 'abort', abort_code: 'x', abort_message: 'y' });
    expect(checkPaymentCommand(createFromA(next))).toBe('payment_wrong_status');
  });

  it.each([
    ['prefixed by the receiver', `${B}_x`],
    ['prefixed by the sender with a subaddress', `${A_SUB}_x`],
    ['prefixed by a third VASP', `${D}_x`],
    ['without an underscore', `${A}x`],
    ['that is only the address', A],
    ['prefixed by the tlb form', `${encodeAddress({ hrp: 'tlb', onchain: onchain(0x41) })}_x`],
    ['prefixed by the uppercase form', `${A.toUpperCase()}_x`],
  ])('rejects a reference_id %s with payment_wrong_structure', (_name, referenceId) => {
    const next = { ...created(), reference_id: referenceId };
    expect(checkPaymentCommand(createFromA(next))).toBe('payment_wrong_structure');
  });

  it('accepts any suffix after the first underscore, even empty', () => {
    for (const suffix of ['', 'ref00000001', 'a_b_c', '🙂']) {
      expect(checkPaymentCommand(createFromA({ ...created(), reference_id: `${A}_${suffix}` }))).toBeNull();
    }
  });

  it('rejects a reference_id that is not the _writes key with payment_wrong_structure', () => {
    expect(checkPaymentCommand(createFromA(created(), `${A}_other`))).toBe('payment_wrong_structure');
  });

  it('checks the reference_id before the creator rule, as the reference does', () => {
    const next = { ...withStatus(created(), 'receiver', { status: 'soft_match' }), reference_id: `${B}_x` };
    expect(checkPaymentCommand(createFromA(next))).toBe('payment_wrong_structure');
  });
});

describe('checkPaymentCommand: actors', () => {
  it('rejects a third VASP as an actor with payment_wrong_actor', () => {
    const next = withActor(created(), 'receiver', {
      address: encodeAddress({ hrp: 'lbr', onchain: onchain(0xdd), subaddress: sub('bbbbbbbb') }),
    });
    expect(checkPaymentCommand(createFromA(next))).toBe('payment_wrong_actor');
  });

  it('rejects the same VASP on both sides with payment_wrong_actor', () => {
    const next = withActor(created(), 'receiver', { address: A_SUB });
    expect(checkPaymentCommand(createFromA(next))).toBe('payment_wrong_actor');
  });

  it('rejects an actor on another network with payment_wrong_actor', () => {
    const next = withActor(created(), 'receiver', {
      address: encodeAddress({ hrp: 'tlb', onchain: onchain(0x42) }),
    });
    expect(checkPaymentCommand(createFromA(next))).toBe('payment_wrong_actor');
  });

  it('rejects an origin outside the channel with payment_wrong_actor', () => {
    expect(checkPaymentCommand({ ...createFromA(created()), origin: D })).toBe('payment_wrong_actor');
  });

  it.each([
    'XYZ',
    '',
    'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pg9skzctpv9skzcg9kmwtq',
    '41414141414141414141414141414141',
  ])('rejects the actor address %j with payment_invalid_libra_address', (address) => {
    expect(checkPaymentCommand(createFromA(withActor(created(), 'sender', { address })))).toBe(
      'payment_invalid_libra_address',
    );
  });

  it('reports an undecodable address before the wrong actors', () => {
    const next = withActor(withActor(created(), 'sender', { address: 'XYZ' }), 'receiver', { address: D });
    expect(checkPaymentCommand(createFromA(next))).toBe('payment_invalid_libra_address');
  });

  it('accepts actor addresses without a subaddress and in uppercase', () => {
    const next = withActor(withActor(created(), 'sender', { address: A }), 'receiver', {
      address: B_SUB.toUpperCase(),
    });
    expect(checkPaymentCommand(createFromA(next))).toBeNull();
  });

  it('throws ADDRESS_INVALID for caller errors (bad me/other/origin, me = other)', () => {
    expect(thrownCode(() => checkPaymentCommand({ ...createFromA(created()), me: 'nope' }))).toBe(
      'ADDRESS_INVALID',
    );
    expect(thrownCode(() => checkPaymentCommand({ ...createFromA(created()), origin: 'nope' }))).toBe(
      'ADDRESS_INVALID',
    );
    expect(thrownCode(() => checkPaymentCommand({ ...createFromA(created()), me: A }))).toBe(
      'ADDRESS_INVALID',
    );
  });

  it('accepts me and other given with a subaddress or as the same account', () => {
    expect(
      checkPaymentCommand({ ...createFromA(created()), me: B_SUB, other: A_SUB, origin: A_SUB }),
    ).toBeNull();
  });
});

describe('checkPaymentCommand: updates', () => {
  it('accepts the reference answer and follow-ups', () => {
    expect(
      checkPaymentCommand({
        me: A,
        other: B,
        origin: B,
        previous: created(),
        next: answered(),
        referenceId: REF,
      }),
    ).toBeNull();
    const next = withActor(answered(), 'sender', {
      status: { status: 'soft_match' },
      additional_kyc_data: { payload_type: 'KYC_DATA', payload_version: 1, type: 'individual', surname: 'X' },
      metadata: ['note'],
    });
    expect(checkPaymentCommand(updateFromA(answered(), next))).toBeNull();
  });

  it('rejects any change to my actor with payment_changed_other_actor', () => {
    const base = answered();
    for (const next of [
      withStatus(base, 'receiver', { status: 'ready_for_settlement' }),
      withActor(base, 'receiver', { metadata: ['sneaky'] }),
      withActor(base, 'receiver', { kyc_data: undefined }),
      withActor(base, 'receiver', {
        address: encodeAddress({ hrp: 'lbr', onchain: onchain(0x42), subaddress: sub('cccccccc') }),
      }),
    ]) {
      expect(checkPaymentCommand(updateFromA(base, next))).toBe('payment_changed_other_actor');
    }
  });

  it('rejects a changed reference_id with payment_wrong_structure', () => {
    const next = { ...answered(), reference_id: `${A}_other` };
    expect(checkPaymentCommand(updateFromA(answered(), next))).toBe('payment_wrong_structure');
  });

  it('rejects a _writes key other than the reference_id with payment_wrong_structure', () => {
    expect(checkPaymentCommand({ ...updateFromA(answered(), answered()), referenceId: `${A}_other` })).toBe(
      'payment_wrong_structure',
    );
  });

  it('accepts re-sending write-once fields with the same value', () => {
    expect(checkPaymentCommand(updateFromA(answered(), structuredClone(answered())))).toBeNull();
  });

  it.each<[string, (p: PaymentObject) => PaymentObject]>([
    ['description', (p) => ({ ...p, description: 'changed' })],
    ['a dropped description', ({ description: _d, ...p }) => p],
    ['recipient_signature', (p) => ({ ...p, recipient_signature: 'forged' })],
    ['action.amount', (p) => ({ ...p, action: { ...p.action, amount: 1_000_000 } })],
    ['action.timestamp', (p) => ({ ...p, action: { ...p.action, timestamp: 1 } })],
    [
      'the sender kyc_data',
      (p) =>
        withActor(p, 'sender', {
          kyc_data: { payload_type: 'KYC_DATA', payload_version: 2, type: 'entity' },
        }),
    ],
    ['a dropped sender kyc_data', (p) => withActor(p, 'sender', { kyc_data: undefined })],
    [
      'the sender subaddress',
      (p) =>
        withActor(p, 'sender', {
          address: encodeAddress({ hrp: 'lbr', onchain: onchain(0x41), subaddress: sub('zzzzzzzz') }),
        }),
    ],
  ])('rejects a change of %s with payment_wrong_structure', (_name, change) => {
    expect(checkPaymentCommand(updateFromA(answered(), change(answered())))).toBe('payment_wrong_structure');
  });

  it('allows write-once fields to be set for the first time', () => {
    const previous = { ...created() };
    delete previous.description;
    expect(checkPaymentCommand(updateFromA(previous, { ...previous, description: 'now set' }))).toBeNull();
    expect(
      checkPaymentCommand(updateFromA(previous, { ...previous, original_payment_reference_id: 'r' })),
    ).toBeNull();
  });

  it('rejects a status moving down with payment_wrong_status', () => {
    const next = withStatus(answered(), 'sender', { status: 'none' });
    expect(checkPaymentCommand(updateFromA(answered(), next))).toBe('payment_wrong_status');
  });

  it('rejects becoming ready after the other side aborted with payment_wrong_status', () => {
    const previous = withStatus(answered(), 'receiver', {
      status: 'abort',
      abort_code: 'c',
      abort_message: 'm',
    });
    const ready = withStatus(previous, 'sender', { status: 'ready_for_settlement' });
    expect(checkPaymentCommand(updateFromA(previous, ready))).toBe('payment_wrong_status');
    const follow = withStatus(previous, 'sender', {
      status: 'abort',
      abort_code: 'FOLLOW',
      abort_message: 'f',
    });
    expect(checkPaymentCommand(updateFromA(previous, follow))).toBeNull();
  });

  it('rejects leaving abort and leaving a settled pair with payment_wrong_status', () => {
    const aborted = withStatus(answered(), 'sender', {
      status: 'abort',
      abort_code: 'c',
      abort_message: 'm',
    });
    expect(
      checkPaymentCommand(updateFromA(aborted, withStatus(aborted, 'sender', { status: 'soft_match' }))),
    ).toBe('payment_wrong_status');
    const settled = withStatus(
      withStatus(answered(), 'receiver', { status: 'ready_for_settlement' }),
      'sender',
      { status: 'ready_for_settlement' },
    );
    const abort = withStatus(settled, 'sender', { status: 'abort', abort_code: 'c', abort_message: 'm' });
    expect(checkPaymentCommand(updateFromA(settled, abort))).toBe('payment_wrong_status');
  });

  it('checks my actor before the status transition', () => {
    const next = withStatus(withActor(answered(), 'receiver', { metadata: ['x'] }), 'sender', {
      status: 'none',
    });
    expect(checkPaymentCommand(updateFromA(answered(), next))).toBe('payment_changed_other_actor');
  });

  it('applies the same rules, mirrored, to my own commands', () => {
    // A checks its own create and update before sending them.
    const mine = { me: A, other: B, origin: A };
    expect(
      checkPaymentCommand({ ...mine, previous: undefined, next: created(), referenceId: REF }),
    ).toBeNull();
    expect(
      checkPaymentCommand({
        ...mine,
        previous: undefined,
        next: withStatus(created(), 'receiver', { status: 'soft_match' }),
        referenceId: REF,
      }),
    ).toBe('payment_wrong_status');
    const update = withStatus(answered(), 'sender', { status: 'soft_match' });
    expect(checkPaymentCommand({ ...mine, previous: answered(), next: update, referenceId: REF })).toBeNull();
    const touchesB = withActor(update, 'receiver', { metadata: ['x'] });
    expect(checkPaymentCommand({ ...mine, previous: answered(), next: touchesB, referenceId: REF })).toBe(
      'payment_changed_other_actor',
    );
  });

  it('explains a rejection with a message', () => {
    const rejection = explainPaymentCommand(createFromA({ ...created(), reference_id: `${B}_x` }));
    expect(rejection?.code).toBe('payment_wrong_structure');
    expect(rejection?.message).toEqual(expect.any(String));
  });
});

describe('payment helpers', () => {
  it('tells final payments from open ones', () => {
    const p = answered();
    const table: Array<[PaymentStatus, PaymentStatus, boolean]> = [
      ['ready_for_settlement', 'ready_for_settlement', true],
      ['abort', 'soft_match', true],
      ['needs_kyc_data', 'abort', true],
      ['ready_for_settlement', 'soft_match', false],
      ['needs_kyc_data', 'none', false],
    ];
    for (const [sender, receiver, final] of table) {
      const status = (s: PaymentStatus) =>
        s === 'abort' ? { status: s, abort_code: 'c', abort_message: 'm' } : { status: s };
      const q = withStatus(withStatus(p, 'sender', status(sender)), 'receiver', status(receiver));
      expect(isFinal(q)).toBe(final);
      expect(isOpen(q)).toBe(!final);
    }
  });

  it('finds actors and roles by on-chain account', () => {
    const p = created();
    expect(roleOf(p, A)).toBe('sender');
    expect(myRole(p, B_SUB)).toBe('receiver');
    expect(roleOf(p, D)).toBeUndefined();
    expect(actorOf(p, B)?.address).toBe(B_SUB);
    expect(actorOf(withActor(p, 'sender', { address: 'XYZ' }), A)).toBeUndefined();
    expect(otherRole('sender')).toBe('receiver');
    expect(thrownCode(() => roleOf(p, 'nope'))).toBe('ADDRESS_INVALID');
  });

  it('updates immutably', () => {
    const p = created();
    const q = withStatus(p, 'receiver', { status: 'soft_match' });
    expect(p.receiver.status.status).toBe('none');
    expect(q.receiver.status.status).toBe('soft_match');
    expect(q.sender).toBe(p.sender);
  });

  it('lists write-once violations', () => {
    const next = withActor({ ...answered(), description: 'x' }, 'sender', { kyc_data: undefined });
    expect(writeOnceViolations(answered(), next)).toEqual(['description', 'sender.kyc_data']);
    expect(writeOnceViolations(answered(), answered())).toEqual([]);
  });
});

interface Party {
  bech32: string;
}
interface FlowLine {
  flow: string;
  step: number;
  from: string;
  to: string;
  request_jws: string;
}
interface ErrorLine {
  scenario: string;
  step: number;
  from: string;
  to: string;
  request_jws?: string;
  outcome: { status?: string; code?: string | null; protocol_error?: boolean | null };
}

describe.skipIf(!HAVE_FIXTURES)('checkPaymentCommand against the golden fixtures', () => {
  const parties = HAVE_FIXTURES
    ? readFixtureJson<{ parties: Record<string, Party> }>('keys.json').parties
    : {};
  const address = (name: string): string => parties[name]!.bech32;

  it.each(['a', 'b', 'c'])('accepts every command of flow %s, from both points of view', (flow) => {
    const lines = readFixtureLines<FlowLine>('flows.jsonl').filter((l) => l.flow === flow);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    let previous: PaymentObject | undefined;
    for (const line of lines) {
      const request = decodeRequest(decodeJwsPayloadUnverified(line.request_jws));
      const { referenceId } = commandVersions(request.command);
      const next = request.command.payment;
      const common = { origin: address(line.from), previous, next, referenceId };
      // The receiver's check (the reference's check_command) …
      expect(
        explainPaymentCommand({ ...common, me: address(line.to), other: address(line.from) }),
      ).toBeNull();
      // … and the sender's own check before sending.
      expect(
        explainPaymentCommand({ ...common, me: address(line.from), other: address(line.to) }),
      ).toBeNull();
      previous = next;
    }
    expect(isFinal(previous!)).toBe(true);
  });

  it('gives the reference code for every command-error scenario of errors.jsonl', () => {
    const lines = readFixtureLines<ErrorLine>('errors.jsonl');
    // Successful versions by cid, to resolve _reads.
    const versions = new Map<string, PaymentObject>();
    const checked: string[] = [];
    for (const line of lines) {
      if (line.request_jws === undefined || line.scenario === 'bad-signature') continue;
      let request: ReturnType<typeof decodeRequest>;
      try {
        request = decodeRequest(decodeJwsPayloadUnverified(line.request_jws));
      } catch {
        continue; // two-writes, bad-type: parsing errors, never reach the payment rules
      }
      const { referenceId, readVersion } = commandVersions(request.command);
      const previous = readVersion === null ? undefined : versions.get(readVersion);
      if (readVersion !== null && previous === undefined) continue; // missing-dep: protocol `wait`
      const code = checkPaymentCommand({
        me: address(line.to),
        other: address(line.from),
        origin: address(line.from),
        previous,
        next: request.command.payment,
        referenceId,
      });
      const expected = line.outcome.code;
      if (line.outcome.status === 'success') {
        expect(code, `${line.scenario} ${line.step}`).toBeNull();
        versions.set(request.cid, request.command.payment);
        checked.push(`${line.scenario}:ok`);
      } else if (typeof expected === 'string' && expected.startsWith('payment_')) {
        expect(code, `${line.scenario} ${line.step}`).toBe(expected);
        checked.push(`${line.scenario}:${expected}`);
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        'wrong-refid:payment_wrong_structure',
        'wrong-actor:payment_wrong_actor',
        'recreate-after-loss:payment_wrong_status',
        'dup-resend:ok',
        'stale-read:ok',
        'unknown-field:ok',
      ]),
    );
  });
});
