/**
 * Protocol roles of a VASP pair (lip1-v1.md §2.5, the reference's `VASPPairChannel.is_client`).
 *
 * With `a`, `b` the 16-byte on-chain addresses and `bit = (a[15] & 1) XOR (b[15] & 1)`: when
 * `bit` is 0 the lexicographically lower address is the server, when it is 1 the higher one.
 * The server's commands win lock contention. Roles are unrelated to who dialled whom.
 */
import { ParleyError } from '../errors.js';
import { ONCHAIN_ADDRESS_BYTES, parseOnchainAddress } from './address.js';

/** The LIP-1 protocol role of a VASP on a channel. */
export type ProtocolRole = 'server' | 'client';

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/**
 * Whether `me` is the protocol server on the channel with `other`. Each may be a bech32
 * account identifier (any subaddress; only the on-chain part counts) or 32 hex characters.
 *
 * @throws ParleyError `ADDRESS_INVALID` when either does not parse, or when both name the same
 *   on-chain account (the reference would make both sides clients; a channel needs two VASPs).
 */
export function isProtocolServer(me: string, other: string): boolean {
  const mine = parseOnchainAddress(me);
  const theirs = parseOnchainAddress(other);
  const order = compareBytes(mine, theirs);
  if (order === 0) throw new ParleyError('ADDRESS_INVALID', 'a channel needs two different VASPs');
  const last = ONCHAIN_ADDRESS_BYTES - 1;
  const bit = ((mine[last] ?? 0) & 1) ^ ((theirs[last] ?? 0) & 1);
  return bit === 0 ? order < 0 : order > 0;
}

/**
 * The protocol role of `me` on the channel with `other`.
 *
 * @throws ParleyError `ADDRESS_INVALID` as {@link isProtocolServer}.
 */
export function protocolRole(me: string, other: string): ProtocolRole {
  return isProtocolServer(me, other) ? 'server' : 'client';
}
