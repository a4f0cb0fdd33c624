/**
 * Slots for sockets that have not authenticated yet (an upgrade until its handshake ends), so
 * that nobody can starve the handshakes of others (docs/security.md):
 *
 * - at most `maxPerAddress` per remote address (an IPv6 address counts by its /64: one host
 *   usually holds a whole /64);
 * - at most `maxTotal` in all;
 * - the last `reserved` of those only for the hosts of configured peers (`isReserved`), so a
 *   flood from many addresses still leaves room for the peers this node knows.
 */
import { isIPv6 } from 'node:net';

export interface PreauthSlotOptions {
  maxTotal: number;
  maxPerAddress: number;
  /** Slots (of `maxTotal`) that only reserved addresses may take. */
  reserved: number;
  /** Whether a remote address is a configured peer's host. */
  isReserved(address: string): boolean;
}

/** Why a slot was refused. */
export type SlotRefusal = 'per_address' | 'total' | 'reserved';

export interface PreauthSlots {
  /** A slot for `remoteAddress`: its `release` (idempotent), or why there is none. */
  take(remoteAddress: string | undefined): { release(): void } | { refused: SlotRefusal };
  /** Slots taken now. */
  readonly inUse: number;
}

/** An address without brackets or zone; an IPv4-mapped IPv6 address as its IPv4. */
export function plainAddress(address: string): string {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1] ?? bare;
}

/** The key an address is counted under: IPv4 as is, IPv6 by its /64 prefix. */
export function addressKey(address: string): string {
  const bare = plainAddress(address);
  if (!isIPv6(bare)) return bare;
  const [head = '', tail = ''] = bare.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = bare.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export function createPreauthSlots(options: PreauthSlotOptions): PreauthSlots {
  const { maxTotal, maxPerAddress } = options;
  const reserved = Math.min(options.reserved, maxTotal);
  const byAddress = new Map<string, number>();
  let total = 0;
  let unreserved = 0;
  return {
    take(remoteAddress) {
      const key = addressKey(remoteAddress ?? '');
      const held = byAddress.get(key) ?? 0;
      if (held >= maxPerAddress) return { refused: 'per_address' };
      if (total >= maxTotal) return { refused: 'total' };
      const isReserved = remoteAddress !== undefined && options.isReserved(plainAddress(remoteAddress));
      if (!isReserved && unreserved >= maxTotal - reserved) return { refused: 'reserved' };
      byAddress.set(key, held + 1);
      total++;
      if (!isReserved) unreserved++;
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          const left = (byAddress.get(key) ?? 1) - 1;
          if (left === 0) byAddress.delete(key);
          else byAddress.set(key, left);
          total--;
          if (!isReserved) unreserved--;
        },
      };
    },
    get inUse() {
      return total;
    },
  };
}
