/**
 * A loopback TCP relay for half-open tests: forwards bytes both ways between its clients and a
 * target, until `blackhole()` makes every connection open at that moment silently drop what
 * it gets, in both directions (no FIN, no RST: both ends still think the path is up).
 * Connections made afterwards are forwarded normally (the path is back for new sockets).
 */
import { connect, createServer, type Socket } from 'node:net';
import { type Observable, Subject } from 'rxjs';

export interface Relay {
  /** `ws://127.0.0.1:<port><path>` of the relay. */
  url(path?: string): string;
  readonly port: number;
  /** Connections currently relayed (not blackholed). */
  readonly live: number;
  /** Emits after each chunk a client sent is handed on to the target (traffic to wait on). */
  readonly toTarget$: Observable<void>;
  /** From now on, every current connection drops everything, silently. */
  blackhole(): void;
  close(): Promise<void>;
}

export async function startRelay(targetPort: number): Promise<Relay> {
  const pairs = new Set<{ client: Socket; upstream: Socket; dead: boolean }>();
  const toTarget = new Subject<void>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, dead: false };
    pairs.add(pair);
    client.on('data', (chunk) => {
      if (!pair.dead) upstream.write(chunk, () => toTarget.next());
    });
    upstream.on('data', (chunk) => {
      if (!pair.dead) client.write(chunk);
    });
    const end = () => {
      // A dead path does not carry the FIN either.
      if (pair.dead) return;
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: (path = '/parley/v1') => `ws://127.0.0.1:${port}${path}`,
    toTarget$: toTarget.asObservable(),
    get live() {
      return [...pairs].filter((p) => !p.dead).length;
    },
    blackhole() {
      for (const pair of pairs) pair.dead = true;
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
