/**
 * The addresses of the configured peers' hosts (from the URLs this node dials), for the
 * handshake slots kept for them (`preauth-slots.ts`). Host names are looked up at start and
 * again every `refreshMs`; a lookup that fails keeps the addresses known before. A peer that
 * dials from another address than its URL's (outbound NAT), or has no URL, still has the
 * per-address slots.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { plainAddress } from './preauth-slots.js';

export interface PeerHosts {
  has(address: string): boolean;
  close(): void;
}

/** Every 10 minutes. */
const DEFAULT_REFRESH_MS = 10 * 60_000;

export function createPeerHosts(urls: readonly string[], options: { refreshMs?: number } = {}): PeerHosts {
  const known = new Map<string, Set<string>>();
  const hosts = new Set<string>();
  for (const url of urls) {
    try {
      hosts.add(new URL(url).hostname.replace(/^\[|\]$/g, ''));
    } catch {
      // Not a URL: the config validation says so; nothing to reserve.
    }
  }
  async function resolveAll(): Promise<void> {
    await Promise.all(
      [...hosts].map(async (host) => {
        if (isIP(host)) {
          known.set(host, new Set([plainAddress(host)]));
          return;
        }
        try {
          const found = await lookup(host, { all: true });
          known.set(host, new Set(found.map((a) => plainAddress(a.address))));
        } catch {
          // Unresolvable now: the addresses found before stay.
        }
      }),
    );
  }
  void resolveAll();
  const timer = setInterval(() => void resolveAll(), options.refreshMs ?? DEFAULT_REFRESH_MS);
  timer.unref();
  return {
    has(address) {
      const plain = plainAddress(address);
      for (const set of known.values()) if (set.has(plain)) return true;
      return false;
    },
    close() {
      clearInterval(timer);
    },
  };
}
