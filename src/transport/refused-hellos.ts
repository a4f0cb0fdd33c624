/**
 * The reports of hellos this node refused (`handshake_refused`): anyone can open a socket, so
 * at most one event per remote address, reason and interval, with how many more were refused
 * meanwhile.
 */
import type { Observable, Subscription } from 'rxjs';
import { createKeyedThrottle } from '../keyed-throttle.js';
import type { HandshakeFailure } from './ws-server.js';

/** Shortest time between two `handshake_refused` events for one remote address and reason. */
export const REFUSED_HELLO_INTERVAL_MS = 10_000;
/** Addresses and reasons tracked at once for that. */
const MAX_REFUSED_HELLO_KEYS = 1000;

/** A hello to me that I refused; `code` is the Parley error code (docs/errors.md). */
export type HandshakeRefused = {
  type: 'handshake_refused';
  code: string;
  message: string;
  remoteAddress: string | undefined;
  /** Hellos refused from this address since the last report and not reported (at most one per 10 s). */
  suppressed?: number;
};

/** Reports the server's refused hellos on `emit` until the subscription it returns ends. */
export function reportRefusedHellos(
  failures$: Observable<HandshakeFailure>,
  emit: (event: HandshakeRefused) => void,
): Subscription {
  /** One `handshake_refused` per remote address, reason and interval. */
  const refusedHellos = createKeyedThrottle({
    intervalMs: REFUSED_HELLO_INTERVAL_MS,
    maxKeys: MAX_REFUSED_HELLO_KEYS,
  });
  return failures$.subscribe(({ error, remoteAddress }) => {
    // Anyone can open a socket: one event per address, reason and interval, with how many more
    // were refused meanwhile, so that a scanner cannot flood the log (and, behind a proxy where
    // every hello has one address, a peer's own reason still shows). Past so many addresses
    // within one interval, a flood: not reported one by one.
    const suppressed = refusedHellos.pass(`${remoteAddress ?? ''}|${error.code}`);
    if (suppressed === undefined) return;
    emit({
      type: 'handshake_refused',
      code: error.code,
      message: error.message,
      remoteAddress,
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  });
}
