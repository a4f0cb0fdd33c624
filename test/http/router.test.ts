/** The HTTP router answers a handler that threw with the coded `INTERNAL` answer, not a bare 500. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { createHttpRouter } from '../../src/http/router.js';

const servers: Array<ReturnType<typeof createServer>> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((done) => s.close(done))));
});

it('answers 500 INTERNAL when a handler throws, and 404 for an unknown path', async () => {
  const router = createHttpRouter();
  router.route('/boom', () => {
    throw new Error('secret detail');
  });
  const server = createServer(router.listener);
  servers.push(server);
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const boom = await fetch(`${base}/boom`);
  expect(boom.status).toBe(500);
  const body = (await boom.json()) as { error: string; message: string };
  expect(body.error).toBe('INTERNAL');
  expect(body.message).not.toContain('secret detail');
  expect((await fetch(`${base}/nowhere`)).status).toBe(404);
});
