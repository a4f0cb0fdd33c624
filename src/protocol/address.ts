/**
 * LIP-5 account identifiers: BIP-173 bech32 (not bech32m) of
 * `[version 1] + convertbits(onchain16 ‖ subaddress8, 8→5)` with hrp `lbr` (mainnet), `tlb`
 * (testnet) or `plb` (pre-mainnet) (lip1-v1.md §2.7).
 *
 * A channel is keyed by the counterparty's on-chain address with the zero subaddress
 * ({@link channelAddress}); payment actors carry their subaddress.
 */
import { ParleyError } from '../errors.js';

/** The human-readable parts LIP-5 defines. */
export const ADDRESS_HRPS = ['lbr', 'tlb', 'plb'] as const;
/** A LIP-5 human-readable part. */
export type AddressHrp = (typeof ADDRESS_HRPS)[number];

/** A decoded account identifier. */
export interface DecodedAddress {
  readonly hrp: AddressHrp;
  /** The 16-byte on-chain account address. */
  readonly onchain: Uint8Array;
  /** The 8-byte subaddress (all zeros when none). */
  readonly subaddress: Uint8Array;
}

/** What {@link encodeAddress} takes. */
export interface AddressParts {
  readonly hrp: AddressHrp;
  /** The 16-byte on-chain account address. */
  readonly onchain: Uint8Array;
  /** The 8-byte subaddress. @default 8 zero bytes */
  readonly subaddress?: Uint8Array;
}

/** Bytes in an on-chain account address. */
export const ONCHAIN_ADDRESS_BYTES = 16;
/** Bytes in a subaddress. */
export const SUBADDRESS_BYTES = 8;

const ADDRESS_VERSION = 1;
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3] as const;
const BECH32_CONST = 1; // bech32m would be 0x2bc830a3
const CHECKSUM_LENGTH = 6;
/** 1 version group + ceil(24 bytes * 8 / 5) data groups. */
const DATA_GROUPS = 1 + Math.ceil(((ONCHAIN_ADDRESS_BYTES + SUBADDRESS_BYTES) * 8) / 5);
const ZERO_SUBADDRESS = new Uint8Array(SUBADDRESS_BYTES);
const HEX_ONCHAIN_RE = /^[0-9a-fA-F]{32}$/;

const CHARSET_INDEX = new Map<string, number>([...CHARSET].map((c, i) => [c, i]));

function invalid(message: string): ParleyError {
  return new ParleyError('ADDRESS_INVALID', message);
}

function isHrp(text: string): text is AddressHrp {
  return (ADDRESS_HRPS as readonly string[]).includes(text);
}

function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const value of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ value;
    for (let i = 0; i < 5; i++) {
      if ((top >>> i) & 1) chk ^= GENERATOR[i] ?? 0;
    }
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >>> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

/** Regroups bits (BIP-173 `convertbits`); `undefined` on invalid padding when `pad` is false. */
function convertBits(data: readonly number[], from: number, to: number, pad: boolean): number[] | undefined {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (const value of data) {
    acc = ((acc << from) | value) & 0xffffff;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & maxv);
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || ((acc << (to - bits)) & maxv) !== 0) {
    return undefined;
  }
  return out;
}

/**
 * Encodes an account identifier (lowercase).
 *
 * @throws ParleyError `ADDRESS_INVALID` for an unknown hrp or wrong byte lengths.
 */
export function encodeAddress(parts: AddressParts): string {
  const { hrp, onchain } = parts;
  const subaddress = parts.subaddress ?? ZERO_SUBADDRESS;
  if (!isHrp(hrp)) throw invalid('unknown hrp');
  if (!(onchain instanceof Uint8Array) || onchain.length !== ONCHAIN_ADDRESS_BYTES) {
    throw invalid(`an on-chain address is ${ONCHAIN_ADDRESS_BYTES} bytes`);
  }
  if (!(subaddress instanceof Uint8Array) || subaddress.length !== SUBADDRESS_BYTES) {
    throw invalid(`a subaddress is ${SUBADDRESS_BYTES} bytes`);
  }
  const groups = convertBits([...onchain, ...subaddress], 8, 5, true) ?? [];
  const data = [ADDRESS_VERSION, ...groups];
  const mod = polymod([...hrpExpand(hrp), ...data, 0, 0, 0, 0, 0, 0]) ^ BECH32_CONST;
  let out = `${hrp}1`;
  for (const group of data) out += CHARSET[group];
  for (let i = 0; i < CHECKSUM_LENGTH; i++) out += CHARSET[(mod >>> (5 * (5 - i))) & 31];
  return out;
}

/**
 * Decodes an account identifier. All-uppercase input is accepted (BIP-173); mixed case is not.
 *
 * @param expectedHrp - when given, an identifier with another hrp is refused.
 * @throws ParleyError `ADDRESS_INVALID` on a bad checksum (including bech32m), mixed case,
 *   characters outside the bech32 set, an unknown or unexpected hrp, a version other than 1, or
 *   a payload that is not 16 + 8 bytes.
 */
export function decodeAddress(text: string, expectedHrp?: AddressHrp): DecodedAddress {
  if (typeof text !== 'string') throw invalid('an address is a string');
  let decoded = decodedCache.get(text);
  if (decoded === undefined) {
    decoded = decodeUncached(text);
    remember(decodedCache, text, decoded);
  }
  if (expectedHrp !== undefined && decoded.hrp !== expectedHrp) throw invalid(`expected hrp ${expectedHrp}`);
  // Copies: callers own what they get, the cache keeps its own bytes.
  return { hrp: decoded.hrp, onchain: decoded.onchain.slice(), subaddress: decoded.subaddress.slice() };
}

/**
 * Decoded identifiers by their text. Every command names the same few accounts several times
 * (actors, channel keys, reference ids), and a bech32 decode costs tens of microseconds; only
 * identifiers that decode are kept, at most {@link CACHE_LIMIT} of each kind.
 */
const decodedCache = new Map<string, DecodedAddress>();
const channelCache = new Map<string, string>();
const CACHE_LIMIT = 10_000;

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(key, value);
}

function decodeUncached(text: string): DecodedAddress {
  const lower = text.toLowerCase();
  if (text !== lower && text !== text.toUpperCase()) throw invalid('mixed case');
  const sep = lower.lastIndexOf('1');
  if (sep < 1) throw invalid('no hrp separator');
  const hrp = lower.slice(0, sep);
  if (!isHrp(hrp)) throw invalid('unknown hrp');
  const chars = lower.slice(sep + 1);
  if (chars.length !== DATA_GROUPS + CHECKSUM_LENGTH) throw invalid('wrong length');
  const values: number[] = [];
  for (const c of chars) {
    const value = CHARSET_INDEX.get(c);
    if (value === undefined) throw invalid('character outside the bech32 set');
    values.push(value);
  }
  if (polymod([...hrpExpand(hrp), ...values]) !== BECH32_CONST) throw invalid('bad checksum');
  const data = values.slice(0, -CHECKSUM_LENGTH);
  if (data[0] !== ADDRESS_VERSION) throw invalid('unsupported version');
  const bytes = convertBits(data.slice(1), 5, 8, false);
  if (bytes === undefined || bytes.length !== ONCHAIN_ADDRESS_BYTES + SUBADDRESS_BYTES) {
    throw invalid('wrong payload length or padding');
  }
  return {
    hrp,
    onchain: Uint8Array.from(bytes.slice(0, ONCHAIN_ADDRESS_BYTES)),
    subaddress: Uint8Array.from(bytes.slice(ONCHAIN_ADDRESS_BYTES)),
  };
}

/** Whether `text` decodes as an account identifier. */
export function isAddress(text: string, expectedHrp?: AddressHrp): boolean {
  try {
    decodeAddress(text, expectedHrp);
    return true;
  } catch {
    return false;
  }
}

/**
 * The same account with the zero subaddress, lowercase: the channel key, the URL path
 * component and the `reference_id` prefix.
 *
 * @throws ParleyError `ADDRESS_INVALID` when `text` does not decode.
 */
export function channelAddress(text: string): string {
  const cached = typeof text === 'string' ? channelCache.get(text) : undefined;
  if (cached !== undefined) return cached;
  const { hrp, onchain } = decodeAddress(text);
  const channel = encodeAddress({ hrp, onchain });
  remember(channelCache, text, channel);
  return channel;
}

/**
 * The on-chain address of an account identifier as 32 lowercase hex characters.
 *
 * @throws ParleyError `ADDRESS_INVALID` when `text` does not decode.
 */
export function onchainHex(text: string): string {
  return Buffer.from(decodeAddress(text).onchain).toString('hex');
}

/**
 * The 16 on-chain bytes of either a bech32 account identifier or 32 hex characters.
 *
 * @throws ParleyError `ADDRESS_INVALID` when `text` is neither.
 */
export function parseOnchainAddress(text: string): Uint8Array {
  if (typeof text === 'string' && HEX_ONCHAIN_RE.test(text)) return Uint8Array.from(Buffer.from(text, 'hex'));
  return decodeAddress(text).onchain;
}
