/** A real HTTP receiver of back-office events on 127.0.0.1 that checks signatures. */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, signatureProblem } from '../../src/business/index.js';
import type { EventBody } from '../../src/events/index.js';
import { changes } from '../helpers/wait.js';

export interface Received {
  body: EventBody;
  status: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  changed: ReturnType<typeof changes>;
  close(): Promise<void>;
}

/** Answers `status(n)` to its n-th request (1-based); 401 to a request with a bad signature. */
export async function startReceiver(
  secret: Buffer,
  status: (n: number) => number = () => 200,
): Promise<Receiver> {
  const received: Received[] = [];
  const changed = changes();
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const header = req.headers[SIGNATURE_HEADER] as string | undefined;
      const problem = signatureProblem([{ id: 'k1', secret }], header, text, Date.now(), 60_000);
      const code = problem ? 401 : status(received.length + 1);
      received.push({ body: JSON.parse(text) as EventBody, status: code });
      res.statusCode = code;
      res.end();
      changed.changed();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    received,
    changed,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The first delivery of each event, in the order received. */
export function firstDeliveries(received: readonly Received[]): EventBody[] {
  const seen = new Set<string>();
  const out: EventBody[] = [];
  for (const r of received) {
    if (seen.has(r.body.id)) continue;
    seen.add(r.body.id);
    out.push(r.body);
  }
  return out;
}
