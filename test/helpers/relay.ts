/**
 * A loopback TCP relay between two nodes, to fault the network between them: `cut()` drops
 * every connection (RST) and refuses new ones until `resume()`; `hold()` keeps connections
 * open but holds back every byte, in both directions, until `release()`.
 *
 * A node dials `relay.url` instead of the peer's URL; the relay forwards to the peer.
 */
import { connect, createServer, type Socket } from 'node:net';
import { type Observable, Subject } from 'rxjs';

/** What the relay saw (hot). */
export type RelayEvent =
  | { type: 'connection' }
  | { type: 'refused'; count: number }
  | { type: 'held'; direction: 'to_target' | 'to_client'; bytes: number }
  | { type: 'cut'; dropped: number };

export interface Relay {
  readonly port: number;
  /** The target's URL with the relay's port: what the dialing node puts in its directory. */
  readonly url: string;
  /** Connections refused since the relay was created. */
  readonly refused: number;
  readonly events$: Observable<RelayEvent>;
  /** Drops every connection (TCP reset) and refuses new ones until {@link Relay.resume}. */
  cut(): void;
  resume(): void;
  /** Holds back all data in both directions until {@link Relay.release} (connections stay up). */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Data held back while `hold()` is on, per direction, in order. */
  toTarget: Buffer[];
  toClient: Buffer[];
}

/** Starts a relay on 127.0.0.1 (any port) forwarding to the node listening at `targetUrl`. */
export async function createRelay(targetUrl: string): Promise<Relay> {
  const target = new URL(targetUrl);
  const events = new Subject<RelayEvent>();
  const pairs = new Set<Pair>();
  let cutting = false;
  let holding = false;
  let refused = 0;

  function drop(pair: Pair): void {
    pairs.delete(pair);
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }

  const server = createServer((client) => {
    if (cutting) {
      refused += 1;
      client.on('error', () => undefined);
      client.resetAndDestroy();
      events.next({ type: 'refused', count: refused });
      return;
    }
    const upstream = connect({ host: target.hostname, port: Number(target.port) });
    const pair: Pair = { client, upstream, toTarget: [], toClient: [] };
    pairs.add(pair);
    events.next({ type: 'connection' });
    const forward = (from: Socket, to: Socket, held: Buffer[], direction: 'to_target' | 'to_client') => {
      from.on('data', (chunk: Buffer) => {
        if (holding) {
          held.push(chunk);
          events.next({ type: 'held', direction, bytes: chunk.length });
        } else to.write(chunk);
      });
      from.on('end', () => to.end());
      from.on('error', () => drop(pair));
      from.on('close', () => drop(pair));
    };
    forward(client, upstream, pair.toTarget, 'to_target');
    forward(upstream, client, pair.toClient, 'to_client');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = new URL(targetUrl);
  url.port = String(port);

  return {
    port,
    url: url.toString(),
    get refused() {
      return refused;
    },
    events$: events.asObservable(),
    cut() {
      cutting = true;
      const dropped = pairs.size;
      for (const pair of [...pairs]) drop(pair);
      events.next({ type: 'cut', dropped });
    },
    resume() {
      cutting = false;
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const pair of pairs) {
        for (const chunk of pair.toTarget.splice(0)) pair.upstream.write(chunk);
        for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
      }
    },
    async close() {
      for (const pair of [...pairs]) drop(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      events.complete();
    },
  };
}
