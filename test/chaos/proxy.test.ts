/**
 * The chaos run's fault proxy (`scripts/chaos/proxy.ts`) over real loopback sockets, in front
 * of an echo server: bytes pass in order through a delay and a stall; a stall that ends in a
 * reset delivers nothing it held; a cut resets and refuses until it ends.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createFaultProxy, type FaultProxy } from '../../scripts/chaos/proxy.js';

interface Client {
  socket: Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves once `text` has been received in full. */
  until(text: string): Promise<void>;
  closed: Promise<void>;
}

function client(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const waiters: Array<() => void> = [];
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString();
      for (const w of waiters.splice(0)) w();
    });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => undefined);
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        until: (text) =>
          new Promise<void>((done) => {
            const check = (): void => {
              if (data.includes(text)) done();
              else waiters.push(check);
            };
            check();
          }),
        closed,
      }),
    );
    socket.once('error', reject);
  });
}

/** Connects and resolves once the connection is closed (reset or refused) without any byte. */
function refusedConnection(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(data));
  });
}

describe('the chaos fault proxy', () => {
  let echo: Server;
  let proxy: FaultProxy;
  const sockets: Socket[] = [];

  async function setUp(): Promise<void> {
    echo = createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
    proxy = await createFaultProxy();
    const address = echo.address();
    proxy.target(typeof address === 'object' && address ? address.port : 0);
  }
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await proxy.close();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });
  const open = async (): Promise<Client> => {
    const c = await client(proxy.port);
    sockets.push(c.socket);
    return c;
  };

  it('forwards bytes in order through a delay, also those sent after it ended', async () => {
    await setUp();
    const c = await open();
    c.socket.write('a');
    await c.until('a');
    const delayed = proxy.delay(400, 100);
    for (const part of ['b', 'c', 'd']) c.socket.write(part);
    await delayed;
    c.socket.write('e');
    await c.until('e');
    expect(c.received()).toBe('abcde');
  });

  it('holds bytes during a stall and delivers them in order after it', async () => {
    await setUp();
    const c = await open();
    const stalled = proxy.stall(1000, false);
    c.socket.write('x');
    c.socket.write('y');
    await stalled;
    c.socket.write('z');
    await c.until('xyz');
    expect(c.received()).toBe('xyz');
  });

  it('a stall that ends in a reset delivers nothing it held', async () => {
    await setUp();
    const c = await open();
    const stalled = proxy.stall(1000, true);
    c.socket.write('lost');
    await stalled;
    await c.closed;
    expect(c.received()).toBe('');
    expect(proxy.counts.resets).toBe(1);
  });

  it('a cut resets the connections, refuses new ones while it lasts, then lets them through', async () => {
    await setUp();
    const before = await open();
    const cut = proxy.cut(2000);
    await before.closed;
    expect(await refusedConnection(proxy.port)).toBe('');
    expect(proxy.counts.refused).toBe(1);
    await cut;
    const after = await open();
    after.socket.write('back');
    await after.until('back');
    expect(proxy.counts.connections).toBe(2);
  });

  it('refuses connections while the target is down (port 0)', async () => {
    await setUp();
    proxy.target(0);
    expect(await refusedConnection(proxy.port)).toBe('');
    expect(proxy.counts.refused).toBe(1);
  });
});
