/**
 * Restore benchmark (PROTOCOL.md §7.6): a store holding `n` closed payments with a peer, the
 * peer's store empty (it lost its state); the full side leads the closed-object restore over an
 * in-memory link (frames signed, verified and counted as on a socket; the receiver verifies every
 * history on a pool of threads, as a node does) with the product's default pace and batches.
 * Reports `restore_objects_per_s`: closed objects restored per second of the whole restore.
 *
 * Run: `npm run bench -- restore`. Env: `PARLEY_BENCH_RESTORE_N` (default 100000).
 *
 * The dataset is built fast: one closed payment chain (created, then both sides
 * `ready_for_settlement`, the automatic business) is signed as a template, and each object gets
 * a fresh reference id and cids before signing (every signature is real); rows go straight
 * through the store's `commit()`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAutoBusiness, createPaymentObject, nextPaymentVersion } from '../../src/business/index.js';
import { isOpen } from '../../src/objects/index.js';
import {
  type CommandRequestObject,
  encodeAddress,
  encodeRequest,
  encodeResponse,
  generatePrivateKey,
  isProtocolServer,
  type PaymentObject,
  type PrivateKey,
  signJwsAsync,
} from '../../src/protocol/index.js';
import { createVerifyPool, type JwsVerifier } from '../../src/protocol/verify-pool.js';
import { openStore } from '../../src/store/open-store.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { CommitItem, ParleyStore } from '../../src/store/types.js';
import { type ChannelSync, createChannelSync, type SyncLink } from '../../src/sync/resync.js';
import { memoryLink, serialExclusive } from '../../test/sync/in-memory.js';

interface Party {
  address: string;
  key: PrivateKey;
}

const N = Number(process.env['PARLEY_BENCH_RESTORE_N'] ?? 100_000);
const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

const party = (byte: number): Party => ({
  address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(byte) }),
  key: generatePrivateKey(),
});

interface Step {
  proposer: Party;
  other: Party;
  request: string;
  response: string;
  payment: PaymentObject;
}

/** One closed payment chain, as encoded text with placeholders to rewrite. */
async function template(
  sender: Party,
  receiver: Party,
): Promise<{ ref: string; cids: string[]; steps: Step[] }> {
  const business = createAutoBusiness();
  let payment = createPaymentObject({
    me: sender.address,
    meSubaddressHex: '0000000000000001',
    to: receiver.address,
    toSubaddressHex: '0000000000000002',
    amount: 100,
    currency: 'TIK',
    referenceSuffix: 'f'.repeat(32),
  });
  const ref = payment.reference_id;
  const steps: Step[] = [];
  const cids: string[] = [];
  let turn: [Party, Party] = [sender, receiver];
  for (let i = 0; i < 12; i++) {
    if (i > 0) {
      if (!isOpen(payment)) break;
      const next = await nextPaymentVersion({ payment, me: turn[0].address, business });
      if (!next) {
        turn = [turn[1], turn[0]];
        const other = await nextPaymentVersion({ payment, me: turn[0].address, business });
        if (!other) break;
        payment = other;
      } else payment = next;
    }
    const cid = `${i.toString(16).padStart(2, '0')}${'e'.repeat(30)}`;
    const request: CommandRequestObject = {
      _ObjectType: 'CommandRequestObject',
      cid,
      command_type: 'PaymentCommand',
      command: {
        _ObjectType: 'PaymentCommand',
        _reads: i === 0 ? {} : { [ref]: cids[i - 1]! },
        _writes: { [ref]: cid },
        payment,
      },
    };
    cids.push(cid);
    steps.push({
      proposer: turn[0],
      other: turn[1],
      request: encodeRequest(request),
      response: encodeResponse({ _ObjectType: 'CommandResponseObject', cid, status: 'success' }),
      payment,
    });
    turn = [turn[1], turn[0]];
  }
  if (isOpen(payment)) throw new Error('the template payment did not close');
  return { ref, cids, steps };
}

/** Signs one object's chain from the template with a fresh reference id and cids. */
async function signObject(
  t: Awaited<ReturnType<typeof template>>,
  me: Party,
  peer: Party,
): Promise<CommitItem[]> {
  const ref = t.ref.replace('f'.repeat(32), randomBytes(16).toString('hex'));
  const cids = t.cids.map(() => randomBytes(16).toString('hex'));
  const rewrite = (text: string): string => {
    let out = text.split(t.ref).join(ref);
    t.cids.forEach((c, i) => {
      out = out.split(c).join(cids[i]!);
    });
    return out;
  };
  return Promise.all(
    t.steps.map(async (s, i): Promise<CommitItem> => {
      const [request, response] = await Promise.all([
        signJwsAsync(rewrite(s.request), s.proposer.key),
        signJwsAsync(rewrite(s.response), s.other.key),
      ]);
      const payment = JSON.parse(rewrite(JSON.stringify(s.payment))) as PaymentObject;
      const version = i === 0 ? null : cids[i - 1]!;
      return {
        command: {
          peer: peer.address,
          cid: cids[i]!,
          direction: s.proposer === me ? 'outbound' : 'inbound',
          referenceId: ref,
          readVersion: version,
          writeVersion: cids[i]!,
          requestJws: request,
          responseJws: response,
          status: 'success',
          errorCode: null,
        },
        version: {
          peer: peer.address,
          referenceId: ref,
          version: cids[i]!,
          previousVersion: version,
          payment: JSON.stringify(payment),
          open: isOpen(payment),
        },
      };
    }),
  );
}

/** The two sides' channel syncs over an in-memory link whose hellos named `restore`. */
function wire(
  a: { me: Party; peer: Party; store: ParleyStore },
  b: { me: Party; peer: Party; store: ParleyStore },
  verifier: JwsVerifier,
): { sa: ChannelSync; sb: ChannelSync } {
  const make = (side: typeof a): ChannelSync =>
    createChannelSync(
      {},
      {
        me: side.me.address,
        peer: side.peer.address,
        myKey: side.me.key,
        peerKey: side.peer.key.publicKey,
        isServer: isProtocolServer(side.me.address, side.peer.address),
        store: createSyncRepository(side.store),
        exclusive: serialExclusive(),
        isPending: () => false,
        dropPending: () => false,
        verifier,
      },
    );
  const sa = make(a);
  const sb = make(b);
  const speaks = { peerSyncMethods: ['list', 'riblt', 'restore'] };
  const la: SyncLink = { ...memoryLink((f) => sb.handleFrame(f, lb), setImmediate), ...speaks };
  const lb: SyncLink = { ...memoryLink((f) => sa.handleFrame(f, la), setImmediate), ...speaks };
  sa.attach(la);
  sb.attach(lb);
  return { sa, sb };
}

const dir = mkdtempSync(join(tmpdir(), 'parley-bench-restore-'));
const a = party(0x41);
const b = party(0x42);
const pool = createVerifyPool({ signers: [b.key] });
try {
  const t = await template(a, b);
  const storeA = await openStore({ url: `file:${join(dir, 'a.db')}` });
  const storeB = await openStore({ url: `file:${join(dir, 'b.db')}` });
  await storeA.upsertPeer({ address: b.address, publicKeyHex: b.key.publicKey.hex });
  await storeB.upsertPeer({ address: a.address, publicKeyHex: a.key.publicKey.hex });
  for (let i = 0; i < N; i += 500) {
    const objects = await Promise.all(
      Array.from({ length: Math.min(500, N - i) }, () => signObject(t, a, b)),
    );
    await storeA.commit(objects.flat());
    if ((i / 500) % 20 === 0) progress(`  built ${i + objects.length}/${N} closed objects`);
  }
  const { sa, sb } = wire({ me: a, peer: b, store: storeA }, { me: b, peer: a, store: storeB }, pool);
  let last = 0;
  sa.restore$.subscribe((e) => {
    if (e.moved - last >= 5000) {
      last = e.moved;
      progress(`  restored ${e.moved}/${N}`);
    }
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = await sa.restore('peer_state_lost');
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (end.moved !== N) throw new Error(`restored ${end.moved} of ${N}`);
  const load1 = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'restore',
      metric: 'restore_objects_per_s',
      value: Math.round((N / s) * 10) / 10,
      unit: '1/s',
      params: {
        n: N,
        commands_per_object: t.steps.length,
        seconds: Math.round(s * 10) / 10,
        cpu_ms_per_object: Math.round(((cpu.user + cpu.system) / 1000 / N) * 1000) / 1000,
        pace_objects_per_s: 1000,
        engine: 'sqlite',
        ...machine,
        load1,
      },
    })}\n`,
  );
  await sa.close();
  await sb.close();
  await storeA.close();
  await storeB.close();
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
