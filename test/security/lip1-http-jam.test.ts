/**
 * LIP-1 HTTP cannot be jammed without a key (issue: defect 1). Bodies that look like a JWS but
 * do not verify, or verify and are not a command request, are answered at once with a signed
 * protocol error (`cid: null`) and never wait on the channel, so they hold none of the peer's
 * pending slots: the real peer's command still gets its answer. Over the WebSocket, the same
 * `[]` payload signed by the authenticated peer gets its signed `parsing_error` too. Nothing is
 * written, and each refusal is logged, rate-limited, with its reason.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createPaymentObject } from '../../src/business/index.js';
import type { NodeEvent } from '../../src/node.js';
import { isHeartbeatFrame } from '../../src/protocol/heartbeat-frames.js';
import {
  base64UrlEncode,
  EDDSA_PROTECTED_HEADER,
  encodeRequest,
  privateKeyFromSeedHex,
  publicKeyFromHex,
  signJws,
  verifyJws,
} from '../../src/protocol/index.js';
import { freePort } from '../helpers/node-process.js';
import { nodeConfig, testIdentity } from '../helpers/nodes.js';
import { openRawPeer, rawDial, signed } from '../helpers/raw-peer.js';
import { rowCounts, type SecuredNode, startSecuredNode } from './harness.js';

interface Answer {
  status: number;
  requestId: string | undefined;
  body: string;
}

function post(port: number, path: string, body: string, requestId: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'X-REQUEST-ID': requestId } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            requestId: res.headers['x-request-id'] as string | undefined,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A body shaped like a JWS with any 64-byte signature. */
function forged(payload: string): string {
  return `${EDDSA_PROTECTED_HEADER}.${base64UrlEncode(Buffer.from(payload))}.${base64UrlEncode(randomBytes(64))}`;
}

describe('LIP-1 HTTP: nothing unauthenticated waits on the channel', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('answers 300 forged requests at once with a signed invalid_signature, and the real peer still gets its answer', async () => {
    const a = testIdentity(0xa1);
    const b = testIdentity(0xb1);
    const aKey = publicKeyFromHex(a.publicKeyHex);
    const bKey = privateKeyFromSeedHex(b.seedHex);
    const unused = await freePort();
    const secured: SecuredNode = await startSecuredNode((url) => ({
      ...nodeConfig(a, url, []),
      peers: [
        {
          address: b.address,
          publicKey: b.publicKeyHex,
          transport: 'lip1-http',
          url: `http://127.0.0.1:${unused}`,
        },
      ],
    }));
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const seen: NodeEvent[] = [];
    node.events$.subscribe((e) => seen.push(e));
    const path = `/v1/${b.address}/${a.address}/command`;
    const before = await rowCounts(db);

    // More than the 256 pending slots, all at once: `[]`, `{}`, and a request-shaped payload.
    const payloads = ['[]', '{}', '{"_ObjectType":"CommandRequestObject","cid":"x"}'];
    const jam = Array.from({ length: 300 }, (_, i) =>
      post(node.port, path, forged(payloads[i % payloads.length]!), `jam${i}`),
    );
    // The real peer, while the jam is under way.
    const payment = createPaymentObject({
      me: b.address,
      meSubaddressHex: '0000000000000001',
      to: a.address,
      toSubaddressHex: '0000000000000001',
      amount: 5,
      currency: 'TIK',
    });
    const cid = randomBytes(16).toString('hex');
    const realJws = signJws(
      encodeRequest({
        _ObjectType: 'CommandRequestObject',
        cid,
        command_type: 'PaymentCommand',
        command: {
          _ObjectType: 'PaymentCommand',
          _reads: {},
          _writes: { [payment.reference_id]: cid },
          payment,
        },
      }),
      bKey,
    );
    const real = post(node.port, path, realJws, 'real-peer');

    const answers = await Promise.all(jam);
    for (const [i, answer] of answers.entries()) {
      expect(answer.status, answer.body).toBe(400);
      expect(answer.requestId).toBe(`jam${i}`);
      expect(JSON.parse(verifyJws(answer.body, aKey))).toEqual({
        _ObjectType: 'CommandResponseObject',
        cid: null,
        status: 'failure',
        error: { protocol_error: true, code: 'invalid_signature', message: expect.any(String) },
      });
    }
    const realAnswer = await real;
    expect(realAnswer.status, realAnswer.body).toBe(200);
    expect(JSON.parse(verifyJws(realAnswer.body, aKey))).toMatchObject({ cid, status: 'success' });
    // Written: the real command, its object (and my business's reaction to it), nothing else.
    expect(before).toEqual({ command_log: 0, outbox: 0, object_head: 0, object_version: 0 });
    expect(await db.query('SELECT cid FROM command_log')).toEqual([{ cid }]);
    for (const table of ['outbox', 'object_head', 'object_version']) {
      const refs = await db.query<{ reference_id: string }>(`SELECT reference_id FROM ${table}`);
      // The outbox holds my reaction once my business has sent it (or not yet).
      const expected = table === 'outbox' ? refs.length : 1;
      expect(refs.length, table).toBe(expected);
      for (const row of refs) expect(row.reference_id, table).toBe(payment.reference_id);
    }

    // Logged at warn with the reason, not 300 times.
    const refused = seen.filter((e) => e.type === 'lip1_request_refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({
      sender: b.address,
      status: 400,
      reason: 'invalid_signature',
      remoteAddress: '127.0.0.1',
    });
  });

  it("answers the peer's own signed `[]`, `{}` and a response frame at once, and logs an unknown sender", async () => {
    const a = testIdentity(0xa2);
    const b = testIdentity(0xb2);
    const aKey = publicKeyFromHex(a.publicKeyHex);
    const bKey = privateKeyFromSeedHex(b.seedHex);
    const unused = await freePort();
    const secured = await startSecuredNode((url) => ({
      ...nodeConfig(a, url, []),
      peers: [
        {
          address: b.address,
          publicKey: b.publicKeyHex,
          transport: 'lip1-http',
          url: `http://127.0.0.1:${unused}`,
        },
      ],
    }));
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const seen: NodeEvent[] = [];
    node.events$.subscribe((e) => seen.push(e));
    const before = await rowCounts(db);
    const path = `/v1/${b.address}/${a.address}/command`;

    for (const payload of [[], {}, { _ObjectType: 'CommandRequestObject', cid: 7 }]) {
      const answer = await post(node.port, path, signed(payload, bKey), 'id1');
      expect(answer.status).toBe(400);
      expect(JSON.parse(verifyJws(answer.body, aKey))).toMatchObject({
        cid: null,
        error: { protocol_error: true, code: 'parsing_error' },
      });
    }
    const response = signed({ _ObjectType: 'CommandResponseObject', cid: 'c', status: 'success' }, bKey);
    const notRequest = await post(node.port, path, response, 'id2');
    expect(notRequest).toMatchObject({ status: 400, body: 'not a command request: CommandResponseObject' });

    const stranger = testIdentity(0xc2);
    const unknown = await post(
      node.port,
      `/v1/${stranger.address}/${a.address}/command`,
      forged('[]'),
      'id3',
    );
    expect(unknown.status).toBe(404);
    expect(await rowCounts(db)).toEqual(before);
    const reasons = seen.flatMap((e) => (e.type === 'lip1_request_refused' ? [e.reason] : []));
    expect(reasons).toEqual(['parsing_error', 'not_a_request', 'unknown_sender']);
  });

  it('over the WebSocket, a `[]` payload signed by the authenticated peer gets a signed parsing_error', async () => {
    const a = testIdentity(0xa3);
    const b = testIdentity(0xb3);
    const aKey = publicKeyFromHex(a.publicKeyHex);
    const secured = await startSecuredNode((url) => nodeConfig(a, url, [{ identity: b }]), {
      sync: { onConnect: false },
    });
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const peer = await openRawPeer(node.url);
    cleanups.push(() => peer.terminate());
    const me = { address: b.address, key: privateKeyFromSeedHex(b.seedHex) };
    await rawDial(peer, me, { address: a.address, publicKey: aKey });
    const before = await rowCounts(db);

    // Dropped (the defect) shows as a frame_refused of kind `unknown`; answered shows on the socket.
    const dropped = firstValueFrom(node.events$.pipe(filter((e) => e.type === 'frame_refused'))).then(
      () => 'dropped' as const,
    );
    const answered = (async () => {
      for (;;) {
        const frame = await peer.next();
        if (isHeartbeatFrame(frame)) continue;
        const payload = JSON.parse(verifyJws(frame, aKey)) as Record<string, unknown>;
        if (payload['_ObjectType'] === 'CommandResponseObject') return payload;
      }
    })();
    peer.send(signed([], me.key));
    const first = await Promise.race([answered, dropped]);
    expect(first).toMatchObject({
      _ObjectType: 'CommandResponseObject',
      cid: null,
      status: 'failure',
      error: { protocol_error: true, code: 'parsing_error' },
    });
    expect(await rowCounts(db)).toEqual(before);
    expect(node.channel(b.address).connection?.state).toBe('open');
  });
});
