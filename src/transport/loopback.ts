/**
 * Loopback detection for the "plain ws only on loopback" rule (PROTOCOL.md §6): a channel
 * without TLS is refused unless both ends are on this machine or the operator opted in with
 * `allowInsecure` (e.g. behind a TLS-terminating proxy).
 */
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether `host` (a hostname or an IP literal, IPv6 optionally in brackets) names this machine's
 * loopback interface: `localhost`, `127.0.0.0/8`, `::1`, or an IPv4-mapped `::ffff:127.x.y.z`.
 * Wildcards (`0.0.0.0`, `::`) are not loopback: they listen on every interface.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (lower === 'localhost' || lower.endsWith('.localhost')) return true;
  const family = isIP(lower);
  if (family === 4) return LOOPBACK.check(lower, 'ipv4');
  if (family === 6) {
    const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    if (mapped?.[1] !== undefined) return LOOPBACK.check(mapped[1], 'ipv4');
    return LOOPBACK.check(lower, 'ipv6');
  }
  return false;
}

/** Whether `url`'s host names this machine's loopback interface ({@link isLoopbackHost}). */
export function isLoopbackUrl(url: string): boolean {
  try {
    return isLoopbackHost(new URL(url).hostname);
  } catch {
    return false;
  }
}
