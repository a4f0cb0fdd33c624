/**
 * Runs the seeded frame fuzz against one real node on 127.0.0.1: half the frames over the
 * WebSocket (after a valid handshake by a raw peer), half over LIP-1 HTTP from a second peer.
 * Checks that every HTTP request gets a status, every WebSocket frame an answer (or, when the
 * payload is signed and of a kind this version does not know, the documented silent drop, or a
 * documented close), that nothing rejects unhandled, and that no guarded row is written but by a
 * frame that verifies under its sender's key.
 */
import { request as httpRequest } from 'node:http';
import type { NodeDeps } from '../../src/node.js';
import { createVaspNode } from '../../src/node.js';
import { isHeartbeatFrame } from '../../src/protocol/heartbeat-frames.js';
import {
  decodeJwsPayloadUnverified,
  type PrivateKey,
  type PublicKey,
  peekJwsObjectType,
  privateKeyFromSeedHex,
  publicKeyFromHex,
  verifyJws,
} from '../../src/protocol/index.js';
import { createNodeDatabase, freePort, type NodeDatabase } from '../../test/helpers/node-process.js';
import { nodeConfig, testIdentity } from '../../test/helpers/nodes.js';
import { openRawPeer, type RawPeer, rawDial } from '../../test/helpers/raw-peer.js';
import { mutate, type Rng, type SeedFrame, seedCorpus, xorshift32 } from './mutate.js';

/** Close codes PROTOCOL.md §6 allows for a bad frame after the handshake. */
const DOCUMENTED_CLOSES = new Set([1003, 1009, 4400, 4401]);
const HTTP_TIMEOUT_MS = 15_000;
const WS_BATCH = process.env['FUZZ_DEBUG'] ? 1 : 25;

export interface FuzzSummary {
  seed: number;
  frames: number;
  ws: { sent: number; answered: number; silent: number; closes: Record<string, number> };
  http: { sent: number; statuses: Record<string, number> };
  verified: number;
  rowsWritten: number;
  ms: number;
  violations: string[];
}

/** The payload of `text` when it verifies under `key` (a frame the peer really signed). */
function signedPayload(text: string, key: PublicKey): { value: unknown; text: string } | undefined {
  let payload: string;
  try {
    payload = verifyJws(text, key);
  } catch {
    return undefined;
  }
  try {
    return { value: JSON.parse(payload) as unknown, text: payload };
  } catch {
    return { value: undefined, text: payload };
  }
}

/**
 * Whether the node may drop a frame without an answer: PROTOCOL.md §6, a frame of a kind this
 * version does not know (a later version's). The node routes by the `_ObjectType` at the head
 * of the payload before it verifies or parses the rest, so a frame whose payload starts with an
 * unknown kind is dropped even when the rest is not JSON or the signature does not verify.
 */
function maySilentlyDrop(text: string): boolean {
  let type: unknown = peekJwsObjectType(text);
  if (type === undefined) {
    try {
      type = (JSON.parse(decodeJwsPayloadUnverified(text)) as Record<string, unknown> | null)?.[
        '_ObjectType'
      ];
    } catch {
      return false;
    }
  }
  return typeof type === 'string' && type !== 'CommandRequestObject';
}

interface Allowed {
  frames: Set<string>;
  referenceIds: Set<string>;
}

function allow(allowed: Allowed, text: string, signed: { value: unknown; text: string } | undefined): void {
  if (!signed) return;
  allowed.frames.add(text);
  for (const m of signed.text.matchAll(/"reference_id":"([^"]*)"/g)) allowed.referenceIds.add(m[1]!);
  const writes = (signed.value as { command?: { _writes?: unknown } } | undefined)?.command?._writes;
  if (writes && typeof writes === 'object') for (const k of Object.keys(writes)) allowed.referenceIds.add(k);
}

function post(port: number, path: string, body: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'X-REQUEST-ID': 'fuzz' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', (err) => resolve(`response error ${err.message}`));
      },
    );
    req.setTimeout(HTTP_TIMEOUT_MS, () => {
      resolve('timeout');
      req.destroy();
    });
    req.on('error', (err) => resolve(`request error ${err.message}`));
    req.end(body);
  });
}

interface WsSide {
  url: string;
  me: { address: string; key: PrivateKey };
  node: { address: string; publicKey: PublicKey };
  peerPublic: PublicKey;
}

/** A connected raw peer that counts the node's command responses. */
async function connect(side: WsSide): Promise<{ peer: RawPeer; answers: () => number }> {
  const peer = await openRawPeer(side.url);
  await rawDial(peer, side.me, side.node);
  let answers = 0;
  peer.ws.on('message', (data: Buffer) => {
    const text = data.toString('utf8');
    if (isHeartbeatFrame(text)) return;
    const payload = signedPayload(text, side.node.publicKey);
    const type = (payload?.value as Record<string, unknown> | undefined)?.['_ObjectType'];
    if (type === 'CommandResponseObject') answers++;
  });
  return { peer, answers: () => answers };
}

function waitFor(
  check: () => boolean,
  closed: Promise<unknown>,
  ms: number,
): Promise<'ok' | 'closed' | 'timeout'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done('timeout'), ms);
    const poll = setInterval(() => check() && done('ok'), 2);
    void closed.then(() => done(check() ? 'ok' : 'closed'));
    function done(r: 'ok' | 'closed' | 'timeout') {
      clearTimeout(timer);
      clearInterval(poll);
      resolve(r);
    }
  });
}

async function fuzzWs(
  rng: Rng,
  count: number,
  side: WsSide,
  corpus: SeedFrame[],
  allowed: Allowed,
  s: FuzzSummary,
) {
  let conn = await connect(side);
  let last = { op: '', text: '' };
  for (let sent = 0; sent < count; ) {
    const batch = Math.min(WS_BATCH, count - sent);
    const start = conn.answers();
    let expected = 0;
    for (let i = 0; i < batch; i++) {
      const m = mutate(rng, pick(rng, corpus).jws, pick(rng, corpus).jws, side.me.key);
      const signed = signedPayload(m.text, side.peerPublic);
      allow(allowed, m.text, signed);
      if (maySilentlyDrop(m.text)) s.ws.silent++;
      else expected++;
      conn.peer.send(m.text);
      last = m;
    }
    sent += batch;
    s.ws.sent += batch;
    const r = await waitFor(() => conn.answers() - start >= expected, conn.peer.closed, HTTP_TIMEOUT_MS);
    s.ws.answered += conn.answers() - start;
    if (r === 'timeout') s.violations.push(`ws: ${expected - (conn.answers() - start)} frames unanswered`);
    if (r === 'timeout' && process.env['FUZZ_DEBUG'])
      console.error('UNANSWERED', last.op, last.text.slice(0, 300), last.text.length);
    if (r === 'closed' || r === 'timeout') {
      const { code } = await Promise.race([conn.peer.closed, Promise.resolve({ code: -1 })]);
      if (code !== -1) {
        s.ws.closes[code] = (s.ws.closes[code] ?? 0) + 1;
        if (!DOCUMENTED_CLOSES.has(code)) s.violations.push(`ws: undocumented close ${code}`);
        conn = await connect(side);
      }
    }
  }
  conn.peer.terminate();
}

async function fuzzHttp(
  rng: Rng,
  count: number,
  port: number,
  path: string,
  key: PrivateKey,
  pub: PublicKey,
  corpus: SeedFrame[],
  allowed: Allowed,
  s: FuzzSummary,
) {
  const frames = Array.from({ length: count }, () =>
    mutate(rng, pick(rng, corpus).jws, pick(rng, corpus).jws, key),
  );
  let next = 0;
  const worker = async () => {
    while (next < frames.length) {
      const m = frames[next++]!;
      allow(allowed, m.text, signedPayload(m.text, pub));
      const status = await post(port, path, m.text);
      s.http.sent++;
      s.http.statuses[status] = (s.http.statuses[status] ?? 0) + 1;
      if (typeof status === 'string') s.violations.push(`http ${m.op}: ${status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

async function checkRows(db: NodeDatabase, allowed: Allowed, s: FuzzSummary): Promise<void> {
  const log = await db.query<{ request_jws: string; direction: string; reference_id: string }>(
    'SELECT request_jws, direction, reference_id FROM command_log',
  );
  s.rowsWritten = log.length;
  for (const row of log) {
    if (row.direction === 'inbound' && !allowed.frames.has(row.request_jws))
      s.violations.push(`command_log row from a frame that does not verify: ${row.request_jws.slice(0, 60)}`);
  }
  for (const table of ['command_log', 'outbox', 'object_head', 'object_version']) {
    const rows = await db.query<{ reference_id: string }>(`SELECT reference_id FROM ${table}`);
    for (const row of rows)
      if (!allowed.referenceIds.has(row.reference_id))
        s.violations.push(`${table} row for a reference id no verified frame carried: ${row.reference_id}`);
  }
}

/** Runs `frames` mutated frames (half per transport) from `seed` against a fresh node. */
export async function runFuzz(options: {
  frames: number;
  seed: number;
  deps?: NodeDeps;
}): Promise<FuzzSummary> {
  const started = Date.now();
  const s: FuzzSummary = {
    seed: options.seed,
    frames: options.frames,
    ws: { sent: 0, answered: 0, silent: 0, closes: {} },
    http: { sent: 0, statuses: {} },
    verified: 0,
    rowsWritten: 0,
    ms: 0,
    violations: [],
  };
  const onRejection = (err: unknown) => s.violations.push(`unhandled rejection: ${String(err)}`);
  process.on('unhandledRejection', onRejection);
  const rng = xorshift32(options.seed);
  const a = testIdentity(0xf1);
  const b = testIdentity(0xf2);
  const c = testIdentity(0xf3);
  const db = await createNodeDatabase();
  const unused = await freePort();
  const node = await createVaspNode(
    {
      ...nodeConfig(a, db.url, [{ identity: b }]),
      // The raw peer sends no heartbeats: it is not closed as unresponsive (1001) meanwhile.
      health: { closeOnDown: false },
      peers: [
        { address: b.address, publicKey: b.publicKeyHex },
        {
          address: c.address,
          publicKey: c.publicKeyHex,
          transport: 'lip1-http',
          url: `http://127.0.0.1:${unused}`,
        },
      ],
    },
    { sync: { onConnect: false }, ...options.deps },
  );
  try {
    const bKey = privateKeyFromSeedHex(b.seedHex);
    const cKey = privateKeyFromSeedHex(c.seedHex);
    const allowed: Allowed = { frames: new Set(), referenceIds: new Set() };
    const wsCorpus = seedCorpus(rng, 16, b.address, a.address, bKey);
    const httpCorpus = seedCorpus(rng, 16, c.address, a.address, cKey);
    const wsCount = Math.ceil(options.frames / 2);
    const side: WsSide = {
      url: node.url,
      me: { address: b.address, key: bKey },
      node: { address: a.address, publicKey: publicKeyFromHex(a.publicKeyHex) },
      peerPublic: publicKeyFromHex(b.publicKeyHex),
    };
    const path = `/v1/${c.address}/${a.address}/command`;
    await Promise.all([
      fuzzWs(rng, wsCount, side, wsCorpus, allowed, s),
      fuzzHttp(
        xorshift32(options.seed ^ 0x5eed),
        options.frames - wsCount,
        node.port,
        path,
        cKey,
        publicKeyFromHex(c.publicKeyHex),
        httpCorpus,
        allowed,
        s,
      ),
    ]);
    s.verified = allowed.frames.size;
    // Still up: a valid command is answered with success on both transports.
    const live = seedCorpus(rng, 1, c.address, a.address, cKey)[0]!;
    allow(allowed, live.jws, signedPayload(live.jws, publicKeyFromHex(c.publicKeyHex)));
    const status = await post(node.port, path, live.jws);
    if (status !== 200) s.violations.push(`after the fuzz, a valid LIP-1 HTTP command got ${status}`);
    const conn = await connect(side);
    const wsLive = seedCorpus(rng, 1, b.address, a.address, bKey)[0]!;
    allow(allowed, wsLive.jws, signedPayload(wsLive.jws, side.peerPublic));
    conn.peer.send(wsLive.jws);
    if ((await waitFor(() => conn.answers() >= 1, conn.peer.closed, HTTP_TIMEOUT_MS)) !== 'ok')
      s.violations.push('after the fuzz, a valid WebSocket command got no answer');
    conn.peer.terminate();
    await checkRows(db, allowed, s);
  } finally {
    await node.close();
    await db.dispose();
    process.off('unhandledRejection', onRejection);
    s.ms = Date.now() - started;
  }
  return s;
}
