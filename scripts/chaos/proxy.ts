/**
 * A loopback TCP fault proxy between two nodes of a chaos run. The dialing node's config names
 * the proxy's port; the proxy forwards each connection to the listening node's current port (it
 * changes at every restart: nodes listen on a port the system picks).
 *
 * Faults, one at a time:
 * - `cut(ms)`: every connection is reset and new ones are refused for `ms`;
 * - `stall(ms)`: connections stay open but no byte passes, either way, for `ms` (a blackhole);
 *   then the held bytes are delivered in order, or, with `thenCut`, the connections are reset;
 * - `delay(latencyMs, ms)`: every chunk is forwarded `latencyMs` late, in order, for `ms`.
 */
import { connect, createServer, type Socket } from 'node:net';

/** What the proxy did, counted over the run. */
export interface ProxyCounts {
  connections: number;
  refused: number;
  resets: number;
}

export interface FaultProxy {
  /** The port the dialing node's config names. */
  readonly port: number;
  readonly counts: ProxyCounts;
  /** Where connections go now (the listening node's port); 0 while it is down. */
  target(port: number): void;
  cut(ms: number): Promise<void>;
  stall(ms: number, thenCut: boolean): Promise<void>;
  delay(latencyMs: number, ms: number): Promise<void>;
  /** Ends any fault at once (the run is settling). */
  heal(): void;
  close(): Promise<void>;
}

/** Bytes, or null for the end of the stream (it waits behind the bytes before it). */
type Chunk = Buffer | null;

const send = (to: Socket, chunk: Chunk): void => {
  if (to.destroyed || to.writableEnded) return;
  if (chunk === null) to.end();
  else to.write(chunk);
};

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Chunks held back by a stall, per direction, in order. */
  held: { toTarget: Chunk[]; toClient: Chunk[] };
}

type Mode = { kind: 'pass' } | { kind: 'cut' } | { kind: 'stall' } | { kind: 'delay'; latencyMs: number };

export async function createFaultProxy(): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  const counts: ProxyCounts = { connections: 0, refused: 0, resets: 0 };
  let targetPort = 0;
  let mode: Mode = { kind: 'pass' };
  /** Resolves the running fault's wait early (heal). */
  let endFault: (() => void) | undefined;
  const timers = new Set<NodeJS.Timeout>();

  function drop(pair: Pair): void {
    if (!pairs.delete(pair)) return;
    counts.resets += 1;
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }

  function forward(pair: Pair, from: Socket, to: Socket, held: Chunk[]): void {
    // Delayed chunks wait in one queue per direction, so they leave in the order they came,
    // also the ones that come after the delay ended.
    const queue: Array<{ at: number; chunk: Chunk }> = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = (): void => {
      timer = undefined;
      while (queue.length > 0 && queue[0]!.at <= Date.now()) send(to, queue.shift()!.chunk);
      if (queue.length > 0) {
        timer = setTimeout(pump, queue[0]!.at - Date.now());
        timers.add(timer);
      }
    };
    const accept = (chunk: Chunk): void => {
      if (mode.kind === 'stall') {
        held.push(chunk);
        return;
      }
      const at = mode.kind === 'delay' ? Date.now() + mode.latencyMs : 0;
      if (at === 0 && queue.length === 0) {
        send(to, chunk);
        return;
      }
      queue.push({ at: Math.max(at, queue.at(-1)?.at ?? 0), chunk });
      if (timer === undefined) pump();
    };
    from.on('data', (chunk: Buffer) => accept(chunk));
    from.on('end', () => accept(null));
    from.on('error', () => drop(pair));
    from.on('close', () => {
      // A closed source whose bytes still wait (a delay, a stall) is dropped once they left.
      if (queue.length === 0 && held.length === 0) drop(pair);
    });
  }

  const server = createServer((client) => {
    client.on('error', () => undefined);
    if (mode.kind === 'cut' || targetPort === 0) {
      counts.refused += 1;
      client.resetAndDestroy();
      return;
    }
    counts.connections += 1;
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    upstream.on('error', () => undefined);
    const pair: Pair = { client, upstream, held: { toTarget: [], toClient: [] } };
    pairs.add(pair);
    forward(pair, client, upstream, pair.held.toTarget);
    forward(pair, upstream, client, pair.held.toClient);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  /** Waits `ms`, or less if healed. */
  function hold(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        endFault = undefined;
        resolve();
      }, ms);
      timers.add(timer);
      endFault = () => {
        clearTimeout(timer);
        timers.delete(timer);
        endFault = undefined;
        resolve();
      };
    });
  }

  function release(): void {
    for (const pair of pairs) {
      for (const chunk of pair.held.toTarget.splice(0)) send(pair.upstream, chunk);
      for (const chunk of pair.held.toClient.splice(0)) send(pair.client, chunk);
    }
  }

  const resetAll = (): void => {
    for (const pair of [...pairs]) drop(pair);
  };

  return {
    port,
    counts,
    target(next) {
      targetPort = next;
    },
    async cut(ms) {
      mode = { kind: 'cut' };
      resetAll();
      await hold(ms);
      mode = { kind: 'pass' };
    },
    async stall(ms, thenCut) {
      mode = { kind: 'stall' };
      await hold(ms);
      mode = { kind: 'pass' };
      if (thenCut) resetAll();
      else release();
    },
    async delay(latencyMs, ms) {
      mode = { kind: 'delay', latencyMs };
      await hold(ms);
      mode = { kind: 'pass' };
    },
    heal() {
      endFault?.();
      mode = { kind: 'pass' };
      release();
    },
    async close() {
      endFault?.();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      resetAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
