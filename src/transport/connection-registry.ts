/**
 * Exactly one live connection per VASP pair (DESIGN.md §3, PROTOCOL.md §6 "4409").
 *
 * Both nodes may dial each other at the same moment, and a dialer may reconnect while the old
 * connection still looks alive on the other side. When a second authenticated connection to
 * the same peer appears, the registry keeps one and closes the other with 4409
 * DUPLICATE_CONNECTION. The rule uses only values both ends know, so both ends keep the same
 * connection without talking to each other:
 *
 * 1. Dialed by different nodes: the connection dialed by the lexicographically lower address
 *    wins.
 * 2. Dialed by the same node: the newer one wins (larger `dialedAtMs`, the dialer's hello
 *    timestamp, then larger `id`); the older one is likely half-dead.
 *
 * A connection that is already closing never blocks a new one.
 */
import { type Observable, Subject } from 'rxjs';
import { CloseCode } from '../protocol/index.js';
import type { Connection } from './types.js';

/** Why the current connection to a peer changed. */
export type RegistryChangeReason = 'connected' | 'replaced' | 'closed';

/** A change of the current connection to one peer. */
export interface RegistryChange {
  peer: string;
  reason: RegistryChangeReason;
  /** The connection now current, if any. */
  current: Connection | undefined;
  /** The connection it replaced or that closed, if any. */
  previous: Connection | undefined;
}

/** The registry of live connections, one per peer. */
export interface ConnectionRegistry {
  /**
   * Offers an authenticated connection. Returns true when it is now the current connection
   * to its peer (a duplicate it beat was closed with 4409), false when it lost (it was closed
   * with 4409) or is not open.
   */
  offer(connection: Connection): boolean;
  /** The current connection to `peer`, if any. */
  current(peer: string): Connection | undefined;
  /** Changes of the current connections (hot; completes on close). */
  readonly changes$: Observable<RegistryChange>;
  /** Closes every current connection (1001) and completes `changes$`. Idempotent. */
  close(): Promise<void>;
}

/** The address that dialed `connection`, seen from `me`. */
function dialerOf(me: string, connection: Connection): string {
  return connection.dialed ? me : connection.peer;
}

/**
 * Which of two live connections between `me` and the same peer both ends keep (see the
 * module comment). Pure and symmetric: `preferredConnection(me, a, b) === preferredConnection(me, b, a)`.
 */
export function preferredConnection(me: string, a: Connection, b: Connection): Connection {
  const dialerA = dialerOf(me, a);
  const dialerB = dialerOf(me, b);
  if (dialerA !== dialerB) return dialerA < dialerB ? a : b;
  if (a.dialedAtMs !== b.dialedAtMs) return a.dialedAtMs > b.dialedAtMs ? a : b;
  return a.id >= b.id ? a : b;
}

/** Creates an empty registry for the node `me`. */
export function createConnectionRegistry(me: string): ConnectionRegistry {
  const currents = new Map<string, Connection>();
  const changes = new Subject<RegistryChange>();
  let closing: Promise<void> | undefined;

  function watch(connection: Connection): void {
    void connection.closed.then(() => {
      if (currents.get(connection.peer) !== connection) return;
      currents.delete(connection.peer);
      changes.next({ peer: connection.peer, reason: 'closed', current: undefined, previous: connection });
    });
  }

  function install(connection: Connection, previous: Connection | undefined): void {
    currents.set(connection.peer, connection);
    watch(connection);
    changes.next({
      peer: connection.peer,
      reason: previous === undefined ? 'connected' : 'replaced',
      current: connection,
      previous,
    });
  }

  return {
    offer(connection) {
      if (closing !== undefined) {
        connection.close(CloseCode.GOING_AWAY, 'node shutting down');
        return false;
      }
      if (connection.state !== 'open') return false;
      const existing = currents.get(connection.peer);
      if (existing === connection) return true;
      if (existing === undefined || existing.state !== 'open') {
        install(connection, existing);
        return true;
      }
      const winner = preferredConnection(me, existing, connection);
      const loser = winner === connection ? existing : connection;
      // Install before closing: the loser's close must not look like the peer going away.
      if (winner === connection) install(connection, existing);
      loser.close(CloseCode.DUPLICATE_CONNECTION, 'duplicate connection');
      return winner === connection;
    },
    current(peer) {
      return currents.get(peer);
    },
    changes$: changes.asObservable(),
    close() {
      closing ??= (async () => {
        const all = [...currents.values()];
        for (const connection of all) connection.close(CloseCode.GOING_AWAY, 'node shutting down');
        await Promise.all(all.map((connection) => connection.closed));
        changes.complete();
      })();
      return closing;
    },
  };
}
