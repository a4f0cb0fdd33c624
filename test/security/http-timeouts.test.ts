/**
 * The HTTP server's limits are explicit and configured (issue: defect 10): a request head or
 * body that never finishes is answered 408 and closed at its timeout (Node's defaults held a
 * slow head ~76 s), connections past `maxConnections` are dropped at once, and an answer that
 * waits after its request was received whole is not cut by the request timeout.
 */
import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLimitedServer } from '../../src/transport/http-server.js';
import { freePort } from '../helpers/node-process.js';
import { nodeConfig, testIdentity } from '../helpers/nodes.js';
import { rowCounts, startSecuredNode } from './harness.js';

/** Opens a TCP connection, writes `text`, and resolves with all it got back once the server closes it. */
function exchange(port: number, text: string): { socket: Socket; reply: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  const reply = new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  socket.write(text);
  return { socket, reply };
}

/** Resolves with the first response head on an open connection (keep-alive). */
function firstHead(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n\r\n')) resolve(got.split('\r\n')[0]!);
    });
    socket.once('close', () => reject(new Error('closed before an answer')));
  });
}

describe('HTTP server limits', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('answers a slow request head and a slow body with 408 and closes them at the configured timeouts', async () => {
    const a = testIdentity(0xf1);
    const b = testIdentity(0xf2);
    const unused = await freePort();
    const secured = await startSecuredNode((url) => {
      const base = nodeConfig(a, url, []);
      return {
        ...base,
        listen: { ...base.listen, limits: { headersTimeoutMs: 200, requestTimeoutMs: 400 } },
        peers: [
          {
            address: b.address,
            publicKey: b.publicKeyHex,
            transport: 'lip1-http',
            url: `http://127.0.0.1:${unused}`,
          },
        ],
      };
    });
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const before = await rowCounts(db);

    const slowHead = exchange(node.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    cleanups.push(() => void slowHead.socket.destroy());
    const slowBody = exchange(
      node.port,
      `POST /v1/${b.address}/${a.address}/command HTTP/1.1\r\nHost: 127.0.0.1\r\nX-REQUEST-ID: slow\r\n` +
        'Content-Length: 1000\r\n\r\neyJhbGciOiJFZERTQSJ9.',
    );
    cleanups.push(() => void slowBody.socket.destroy());
    expect((await slowHead.reply).split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect((await slowBody.reply).split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(await rowCounts(db)).toEqual(before);
  }, 60_000);

  it('drops connections past maxConnections at once, and serves again once one closes', async () => {
    const a = testIdentity(0xf3);
    const secured = await startSecuredNode((url) => {
      const base = nodeConfig(a, url, []);
      return { ...base, listen: { ...base.listen, limits: { maxConnections: 2 } } };
    });
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const before = await rowCounts(db);
    const request = 'GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    const held: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = connect(node.port, '127.0.0.1');
      socket.on('error', () => {});
      cleanups.push(() => void socket.destroy());
      const head = firstHead(socket);
      socket.write(request);
      // Answered, and kept open (keep-alive): the server holds it.
      expect(await head).toBe('HTTP/1.1 404 Not Found');
      held.push(socket);
    }
    const third = exchange(node.port, request);
    cleanups.push(() => void third.socket.destroy());
    expect(await third.reply).toBe('');
    held[0]!.destroy();
    await new Promise<void>((resolve) => held[0]!.once('close', () => resolve()));
    // The server counts the closed one out on its own close event: retry until it has.
    for (;;) {
      const again = exchange(node.port, request);
      const reply = await again.reply.then((text) => text.split('\r\n')[0]);
      again.socket.destroy();
      if (reply === '') continue;
      expect(reply).toBe('HTTP/1.1 404 Not Found');
      break;
    }
    expect(await rowCounts(db)).toEqual(before);
  }, 60_000);

  it('does not cut an answer that waits after its request arrived whole', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const server: Server = createLimitedServer(
      { limits: { headersTimeoutMs: 100, requestTimeoutMs: 200 } },
      (req, res) => {
        req.resume();
        if (req.url === '/wait') void held.then(() => res.end('late answer'));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    cleanups.push(() => server.closeAllConnections());
    const port = (server.address() as { port: number }).port;
    const waiting = exchange(port, 'GET /wait HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    // A slow body started after it gets its 408: the request timeout has passed for both.
    const slow = exchange(port, 'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab');
    expect((await slow.reply).split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    release();
    const answer = await waiting.reply;
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(answer.endsWith('late answer')).toBe(true);
  }, 60_000);
});
