/**
 * `BusinessContext.openChannelTo`: my business may refuse a counterparty for a while, without a
 * config change or a restart. Its hello is refused (4403), my node does not dial it, and a
 * LIP-1 HTTP request from it gets 401 (as the reference answers); once the business accepts it
 * again, the channel comes up by itself (the dialer keeps trying).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BusinessNotAuthorized, createAutoBusiness } from '../../src/business/index.js';
import { createVaspNode, type NodeEvent, type VaspNode } from '../../src/node.js';
import { createNodeDatabase, freePort } from '../helpers/node-process.js';
import { nodeConfig, testIdentity, until } from '../helpers/nodes.js';

describe('a business that refuses a counterparty (real sockets; SQLite, or PostgreSQL with PARLEY_TEST_DB)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("refuses the peer's hello (4403) while it refuses; the channel comes up once it accepts", async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0xa1);
    const b = testIdentity(0xa2);
    let bRefusesA = true;
    const asked: string[] = [];
    const nodeB: VaspNode = await createVaspNode(nodeConfig(b, dbB.url, [{ identity: a }]), {
      business: {
        ...createAutoBusiness(),
        openChannelTo(other) {
          asked.push(other);
          if (bRefusesA) throw new BusinessNotAuthorized(`${other} is suspended`);
        },
      },
    });
    cleanups.push(() => nodeB.close());
    const seenB: NodeEvent[] = [];
    nodeB.events$.subscribe((e) => seenB.push(e));
    const nodeA = await createVaspNode(nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]));
    cleanups.push(() => nodeA.close());
    const seenA: NodeEvent[] = [];
    nodeA.events$.subscribe((e) => seenA.push(e));

    await until([nodeA, nodeB], async () => seenA.some((e) => e.type === 'dial_failed'));
    expect(seenB.find((e) => e.type === 'handshake_refused')).toMatchObject({
      code: 'BUSINESS_NOT_AUTHORIZED',
    });
    // A sees the 4403 close: refused as unknown, with B's reason.
    const failed = seenA.find((e) => e.type === 'dial_failed');
    expect(failed).toMatchObject({ peer: b.address, code: 'AUTH_UNKNOWN_PEER' });
    expect((failed as { message: string }).message).toContain('4403');
    expect(asked[0]).toBe(a.address);
    expect((await nodeB.status())[0]?.state).not.toBe('connected');

    bRefusesA = false;
    await until([nodeA, nodeB], async () => (await nodeB.status())[0]?.state === 'connected', {
      timeoutMs: 30_000,
    });
    expect((await nodeA.status())[0]?.state).toBe('connected');
  });

  it('does not dial a peer its business refuses (dial_failed BUSINESS_NOT_AUTHORIZED)', async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0xa3);
    const b = testIdentity(0xa4);
    const nodeB = await createVaspNode(nodeConfig(b, dbB.url, [{ identity: a }]));
    cleanups.push(() => nodeB.close());
    const refusedHellos: NodeEvent[] = [];
    nodeB.events$.subscribe((e) => {
      if (e.type === 'handshake_refused') refusedHellos.push(e);
    });
    const nodeA = await createVaspNode(nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]), {
      business: {
        ...createAutoBusiness(),
        openChannelTo() {
          throw new BusinessNotAuthorized('not now');
        },
      },
    });
    cleanups.push(() => nodeA.close());
    const seenA: NodeEvent[] = [];
    nodeA.events$.subscribe((e) => seenA.push(e));
    await until([nodeA], async () => seenA.some((e) => e.type === 'dial_failed'));
    expect(seenA.find((e) => e.type === 'dial_failed')).toMatchObject({ code: 'BUSINESS_NOT_AUTHORIZED' });
    // Nothing reached B: the refusal came before the socket.
    expect(refusedHellos).toEqual([]);
    expect((await nodeB.status())[0]?.state).not.toBe('connected');
  });

  it('answers a LIP-1 HTTP request from a peer it refuses with 401, as the reference does', async () => {
    const db = await createNodeDatabase();
    cleanups.push(db.dispose);
    const a = testIdentity(0xa5);
    const b = testIdentity(0xa6);
    let refuse = true;
    const base = nodeConfig(a, db.url, []);
    const nodeA = await createVaspNode(
      {
        ...base,
        // B is not running: what matters is how A answers B's requests.
        peers: [
          {
            address: b.address,
            publicKey: b.publicKeyHex,
            url: `http://127.0.0.1:${await freePort()}`,
            transport: 'lip1-http',
          },
        ],
      },
      {
        business: {
          ...createAutoBusiness(),
          openChannelTo() {
            if (refuse) throw new BusinessNotAuthorized('suspended');
          },
        },
      },
    );
    cleanups.push(() => nodeA.close());
    const post = async () => {
      const res = await fetch(`http://127.0.0.1:${nodeA.port}/v1/${b.address}/${a.address}/command`, {
        method: 'POST',
        headers: { 'X-REQUEST-ID': '00112233445566778899aabbccddeeff' },
        body: 'not a JWS',
      });
      return { status: res.status, requestId: res.headers.get('x-request-id'), text: await res.text() };
    };
    expect(await post()).toMatchObject({ status: 401, requestId: '00112233445566778899aabbccddeeff' });
    refuse = false;
    // Read by the channel now (and refused as LIP-1 does: 400).
    expect((await post()).status).toBe(400);
  });
});
