/**
 * The LIP-1 HTTP transport over real HTTP on 127.0.0.1 (SQLite files): two Parley nodes settle
 * payments with each other over it, and a node answers the reference implementation's own
 * requests (the golden frames) the way the reference does and sends its commands the
 * reference's way (path, `X-REQUEST-ID`), to a stand-in peer that signs as the reference's VASP A.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../../src/config.js';
import { isParleyError } from '../../src/errors.js';
import type { VaspNode } from '../../src/node.js';
import {
  decodeJwsPayloadUnverified,
  encodeResponse,
  privateKeyFromSeedHex,
  signJws,
  verifyJws,
} from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureJson, readFixtureLines } from '../helpers/fixtures.js';
import { freePort } from '../helpers/node-process.js';
import { nodeConfig, startNode, type TestIdentity, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { fixtureParties } from '../helpers/parties.js';

interface FlowLine {
  flow: string;
  step: number;
  from: string;
  path: string;
  headers: string;
  http_status: number;
  request_jws: string;
  response_payload: { cid: string; status: string };
}

interface ErrorLine {
  scenario: string;
  step: number;
  path: string;
  request_headers: string | Record<string, string>;
  request_jws?: string;
  request_body_raw?: string;
  http_status: number;
  response_payload?: { status: string; error?: { code: string; protocol_error: boolean } };
}

/** The `X-REQUEST-ID` of a captured header set (an object, or a Python dict's text in flows.jsonl). */
function capturedRequestId(headers: string | Record<string, string>): string | undefined {
  if (typeof headers === 'string') return /'X-REQUEST-ID': '([^']+)'/i.exec(headers)?.[1];
  return Object.entries(headers).find(([name]) => name.toLowerCase() === 'x-request-id')?.[1];
}

function httpPeer(identity: TestIdentity, port: number): Record<string, unknown> {
  return {
    address: identity.address,
    publicKey: identity.publicKeyHex,
    transport: 'lip1-http',
    url: `http://127.0.0.1:${port}`,
  };
}

describe('LIP-1 HTTP transport (real HTTP on 127.0.0.1, SQLite files)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function node(config: Record<string, unknown>): Promise<VaspNode> {
    const started = await startNode(config as never);
    cleanups.push(() => started.close());
    return started;
  }

  function database(): string {
    const dir = tempDir();
    cleanups.push(() => dir.dispose());
    return `file:${dir.path}/node.db`;
  }

  it('two nodes settle payments both ways over LIP-1 HTTP; both signed logs are identical', async () => {
    const a = testIdentity(0x41);
    const b = testIdentity(0x42);
    const [portA, portB] = [await freePort(), await freePort()];
    const nodeA = await node({ ...nodeConfig(a, database(), [], portA), peers: [httpPeer(b, portB)] });
    const nodeB = await node({ ...nodeConfig(b, database(), [], portB), peers: [httpPeer(a, portA)] });
    const refs: string[] = [];
    const outcomes: Array<Promise<{ status: string }>> = [];
    for (let i = 0; i < 10; i++) {
      const [from, to] = i % 2 === 0 ? [nodeA, nodeB] : [nodeB, nodeA];
      const { referenceId, outcome$ } = from.pay({ to: to.address, amount: 10 + i, currency: 'TIK' });
      refs.push(referenceId);
      outcomes.push(firstValueFrom(outcome$) as Promise<{ status: string }>);
    }
    expect((await Promise.all(outcomes)).map((o) => o.status)).toEqual(Array(10).fill('success'));
    await until(
      [nodeA, nodeB],
      async () => {
        for (const ref of refs) {
          const [ha, hb] = [await nodeA.store.head(b.address, ref), await nodeB.store.head(a.address, ref)];
          if (!ha || !hb || ha.open || hb.open || ha.headVersion !== hb.headVersion) return false;
        }
        return nodeA.channel(b.address).inflight === 0 && nodeB.channel(a.address).inflight === 0;
      },
      { timeoutMs: 60_000 },
    );
    for (const ref of refs) {
      const [logA, logB] = [
        await nodeA.store.history(b.address, ref),
        await nodeB.store.history(a.address, ref),
      ];
      expect(logA).toHaveLength(5);
      expect(logA.map((r) => [r.cid, r.requestJws, r.responseJws])).toEqual(
        logB.map((r) => [r.cid, r.requestJws, r.responseJws]),
      );
    }
    // Neither node watches the other's health: LIP-1 has no heartbeats.
    expect(nodeA.health.snapshot()).toEqual([]);
  });

  it('a peer that cannot verify a command answers without a cid: over HTTP that still ends the command, once', async () => {
    const a = testIdentity(0x41);
    const b = testIdentity(0x42);
    const bKey = privateKeyFromSeedHex(b.seedHex);
    // B's stand-in: answers every request as a LIP-1 peer with the wrong key for A would.
    let requests = 0;
    const portB = await freePort();
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests++;
        const body = signJws(
          encodeResponse({
            _ObjectType: 'CommandResponseObject',
            cid: null,
            status: 'failure',
            error: { protocol_error: true, code: 'invalid_signature', message: 'Invalid Signature' },
          }),
          bKey,
        );
        res.writeHead(400, { 'X-REQUEST-ID': String(req.headers['x-request-id']) });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(portB, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const nodeA = await node({ ...nodeConfig(a, database(), []), peers: [httpPeer(b, portB)] });
    const outcome = (await firstValueFrom(
      nodeA.pay({ to: b.address, amount: 5, currency: 'TIK' }).outcome$,
    )) as {
      status: string;
      code: string | null;
    };
    expect(outcome).toMatchObject({ status: 'failure', code: 'invalid_signature' });
    expect(nodeA.channel(b.address).inflight).toBe(0);
    expect(requests).toBe(1);
  });

  it('drops an answer that does not echo the request id, or is over the frame limit, and retransmits', async () => {
    const a = testIdentity(0x41);
    const b = testIdentity(0x42);
    const bKey = privateKeyFromSeedHex(b.seedHex);
    const seen: string[] = [];
    const portB = await freePort();
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const requestId = String(req.headers['x-request-id']);
        seen.push(requestId);
        const cid = (
          JSON.parse(decodeJwsPayloadUnverified(Buffer.concat(chunks).toString('utf8'))) as { cid: string }
        ).cid;
        const body = signJws(
          encodeResponse({ _ObjectType: 'CommandResponseObject', cid, status: 'success' }),
          bKey,
        );
        if (seen.length === 1) {
          res.writeHead(200, { 'X-REQUEST-ID': 'someone-else' });
          res.end(body);
        } else if (seen.length === 2) {
          res.writeHead(200, { 'X-REQUEST-ID': requestId });
          res.end(body + ' '.repeat(2 * 1024 * 1024)); // over maxFrameBytes (1 MiB)
        } else {
          res.writeHead(200, { 'X-REQUEST-ID': requestId });
          res.end(body);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(portB, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const nodeA = await node({ ...nodeConfig(a, database(), []), peers: [httpPeer(b, portB)] });
    const { referenceId, outcome$ } = nodeA.pay({ to: b.address, amount: 5, currency: 'TIK' });
    expect(await firstValueFrom(outcome$)).toMatchObject({ status: 'success' });
    expect(seen).toHaveLength(3);
    expect(new Set(seen).size).toBe(3); // a fresh id for every attempt
    expect((await nodeA.store.history(b.address, referenceId)).map((r) => r.status)).toEqual(['success']);
  });

  it('routes only its own commands: another receiver, an unknown sender or a WebSocket peer get 404', async () => {
    const a = testIdentity(0x41);
    const b = testIdentity(0x42);
    const c = testIdentity(0x43);
    const port = await freePort();
    const nodeB = await node({
      ...nodeConfig(b, database(), [{ identity: c }], port),
      peers: [httpPeer(a, await freePort()), { address: c.address, publicKey: c.publicKeyHex }],
    });
    const post = (path: string) =>
      fetch(`http://127.0.0.1:${nodeB.port}${path}`, {
        method: 'POST',
        headers: { 'X-REQUEST-ID': 'x' },
        body: '.e30.',
      });
    expect((await post(`/v1/${a.address}/${c.address}/command`)).status).toBe(404);
    expect((await post(`/v1/${testIdentity(0x44).address}/${b.address}/command`)).status).toBe(404);
    expect((await post(`/v1/${c.address}/${b.address}/command`)).status).toBe(404);
    expect((await post(`/v1/${a.address}/${b.address}/command/more`)).status).toBe(404);
    // On A's route: only a POST of a command request, within the frame limit.
    const route = `http://127.0.0.1:${nodeB.port}/v1/${a.address}/${b.address}/command`;
    const get = await fetch(route, { headers: { 'X-REQUEST-ID': 'r1' } });
    expect([get.status, get.headers.get('x-request-id')]).toEqual([405, 'r1']);
    const response = signJws(
      encodeResponse({ _ObjectType: 'CommandResponseObject', cid: 'c'.repeat(32), status: 'success' }),
      privateKeyFromSeedHex(a.seedHex),
    );
    const notRequest = await fetch(route, {
      method: 'POST',
      headers: { 'X-REQUEST-ID': 'r2' },
      body: response,
    });
    expect([notRequest.status, await notRequest.text()]).toEqual([
      400,
      'not a command request: CommandResponseObject',
    ]);
    const tooLarge = await fetch(route, {
      method: 'POST',
      headers: { 'X-REQUEST-ID': 'r3' },
      body: 'x'.repeat(1024 * 1024 + 1),
    });
    expect(tooLarge.status).toBe(413);
    expect(nodeB.channel(a.address).inflight).toBe(0);
  });

  it('a lip1-http peer needs an http(s) URL; a ws peer still needs a ws(s) one', () => {
    const me = testIdentity(1);
    const peer = testIdentity(2);
    const base = nodeConfig(me, 'file:x.db', []);
    const refused = (peers: unknown[]): string => {
      try {
        parseNodeConfig({ ...base, peers });
      } catch (err) {
        expect(isParleyError(err, 'CONFIG_INVALID')).toBe(true);
        return (err as Error).message;
      }
      return '';
    };
    const p = { address: peer.address, publicKey: peer.publicKeyHex };
    expect(refused([{ ...p, transport: 'lip1-http' }])).toContain('peers.0.url');
    expect(refused([{ ...p, transport: 'lip1-http', url: 'ws://127.0.0.1:1' }])).toContain('http');
    expect(refused([{ ...p, transport: 'lip1-http', url: 'http://vasp-b.example' }])).toContain('https://');
    for (const url of ['https://vasp-b.example/off-chain', 'http://127.0.0.1:7091', 'http://localhost:1']) {
      expect(parseNodeConfig({ ...base, peers: [{ ...p, transport: 'lip1-http', url }] }).peers[0]!.url).toBe(
        url,
      );
    }
    expect(refused([{ ...p, url: 'http://127.0.0.1:1' }])).toContain('ws://');
    expect(refused([{ ...p, transport: 'smoke-signals', url: 'http://x' }])).toContain('transport');
    expect(parseNodeConfig({ ...base, peers: [{ ...p, url: 'ws://127.0.0.1:1' }] }).peers[0]!.transport).toBe(
      'ws',
    );
  });

  describe.skipIf(!HAVE_FIXTURES)("against the reference's golden frames (node = reference VASP B)", () => {
    interface Seen {
      path: string;
      requestId: string | undefined;
      jws: string;
    }

    /** Reference VASP A's stand-in: records requests, answers each with a success signed by A. */
    async function referenceA(port: number): Promise<{ seen: Seen[]; server: Server }> {
      const { A } = fixtureParties();
      const seen: Seen[] = [];
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const jws = Buffer.concat(chunks).toString('utf8');
          const requestId = req.headers['x-request-id'] as string | undefined;
          seen.push({ path: req.url ?? '', requestId, jws });
          const cid = (JSON.parse(decodeJwsPayloadUnverified(jws)) as { cid: string }).cid;
          const body = signJws(
            encodeResponse({ _ObjectType: 'CommandResponseObject', cid, status: 'success' }),
            A.key,
          );
          res.writeHead(200, {
            'X-REQUEST-ID': requestId ?? 'None',
            'Content-Type': 'text/plain; charset=utf-8',
          });
          res.end(body);
        });
      });
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      return { seen, server };
    }

    async function nodeAsB(): Promise<{ nodeB: VaspNode; seen: Seen[] }> {
      const { A, B } = fixtureParties();
      const portA = await freePort();
      const { seen } = await referenceA(portA);
      const seedB = readFixtureKeys().B;
      const nodeB = await node({
        address: B.address,
        privateKeySeed: seedB,
        database: database(),
        listen: { host: '127.0.0.1', port: 0 },
        retransmitMs: 500,
        peers: [
          {
            address: A.address,
            publicKey: readFixtureKeys().publicA,
            transport: 'lip1-http',
            url: `http://127.0.0.1:${portA}`,
          },
        ],
      });
      return { nodeB, seen };
    }

    function readFixtureKeys(): { B: string; publicA: string } {
      const keys = readFixtureJson<{
        parties: Record<string, { private_seed_hex: string; public_key_hex: string }>;
      }>('keys.json');
      return { B: keys.parties['B']!.private_seed_hex, publicA: keys.parties['A']!.public_key_hex };
    }

    it("answers the reference's first request of flow (a) as the reference did, then sends its own next command the reference's way", async () => {
      const { A, B } = fixtureParties();
      const { nodeB, seen } = await nodeAsB();
      const step1 = readFixtureLines<FlowLine>('flows.jsonl').find((l) => l.flow === 'a' && l.step === 1)!;
      const requestId = capturedRequestId(step1.headers)!;
      const answer = await fetch(`http://127.0.0.1:${nodeB.port}${step1.path}`, {
        method: 'POST',
        headers: { 'X-REQUEST-ID': requestId, 'Content-Type': 'text/plain; charset=utf-8' },
        body: step1.request_jws,
      });
      expect(answer.status).toBe(step1.http_status);
      expect(answer.headers.get('x-request-id')).toBe(requestId);
      const response = JSON.parse(verifyJws(await answer.text(), B.publicKey)) as {
        cid: string;
        status: string;
      };
      expect(response).toMatchObject({ cid: step1.response_payload.cid, status: 'success' });

      // B's automatic business answers with the next version, sent to A the reference's way.
      await until([nodeB], async () => seen.length > 0 && nodeB.channel(A.address).inflight === 0, {
        timeoutMs: 30_000,
      });
      const [sent] = seen;
      expect(sent!.path).toBe(`/v1/${B.address}/${A.address}/command`);
      expect(sent!.requestId).toMatch(/^[0-9a-f]{32}$/);
      const request = JSON.parse(verifyJws(sent!.jws, B.publicKey)) as {
        command: { _reads: Record<string, string> };
      };
      expect(Object.values(request.command._reads)).toEqual([step1.response_payload.cid]);
      const ref = Object.keys(request.command._reads)[0]!;
      // A's signed success was applied: the object is at B's version on B's side.
      expect((await nodeB.store.head(A.address, ref))?.versionCount).toBe(2);
    });

    it("answers the reference's error scenarios with the reference's HTTP status and error code", async () => {
      const { nodeB } = await nodeAsB();
      const { B } = fixtureParties();
      const lines = readFixtureLines<ErrorLine>('errors.jsonl');
      for (const scenario of ['no-request-id', 'bad-signature', 'bad-json']) {
        const line = lines.find((l) => l.scenario === scenario && l.step === 1)!;
        const requestId = capturedRequestId(line.request_headers);
        // The captures are from C; this node knows A only, so the sender in the path is A.
        const path = line.path.replace(/^\/v1\/[^/]+\//, `/v1/${fixtureParties().A.address}/`);
        const answer = await fetch(`http://127.0.0.1:${nodeB.port}${path}`, {
          method: 'POST',
          headers: requestId ? { 'X-REQUEST-ID': requestId } : {},
          body: line.request_jws ?? line.request_body_raw ?? '',
        });
        expect(answer.status, scenario).toBe(line.http_status);
        expect(answer.headers.get('x-request-id'), scenario).toBe(requestId ?? 'None');
        const body = await answer.text();
        if (line.response_payload?.error) {
          const response = JSON.parse(verifyJws(body, B.publicKey)) as {
            status: string;
            error: { code: string; protocol_error: boolean };
          };
          expect(response.status, scenario).toBe('failure');
          expect(response.error, scenario).toMatchObject({
            code: line.response_payload.error.code,
            protocol_error: line.response_payload.error.protocol_error,
          });
        }
      }
    });
  });
});
