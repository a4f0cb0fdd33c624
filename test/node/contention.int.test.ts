/**
 * Both VASPs update the same version of a payment at the same moment (LIP-1 v1 contention):
 * the protocol server's command wins on both sides, the client's command ends with
 * `used_dependencies`, its business layer is told exactly once, and the payment still
 * completes. Two nodes in this process (so a business can be held at a gate), real sockets and
 * databases; a TCP relay holds every byte between them until both updates are on their way.
 */
import { filter, firstValueFrom, lastValueFrom, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { type BusinessContext, createAutoBusiness } from '../../src/business/index.js';
import { createVaspNode, type NodeEvent, type VaspNode } from '../../src/node.js';
import { isProtocolServer, type PaymentObject } from '../../src/protocol/index.js';
import { createNodeDatabase } from '../helpers/node-process.js';
import { nodeConfig, type TestIdentity, testIdentity, until } from '../helpers/nodes.js';
import { createRelay, type Relay } from '../helpers/relay.js';
import { expectIdenticalSignedLogs } from './signed-logs.js';

/** The automatic business, except that its reaction to a gated payment waits for `open(ref)`. */
function gatedBusiness(): {
  business: BusinessContext;
  gate(ref: string): { entered: Promise<void>; open(): void };
} {
  const auto = createAutoBusiness() as BusinessContext;
  const gates = new Map<string, { entered: () => void; opened: Promise<void> }>();
  return {
    business: {
      ...auto,
      async paymentPreProcessing(payment, info) {
        const gate = gates.get(payment.reference_id);
        if (gate) {
          gates.delete(payment.reference_id);
          gate.entered();
          await gate.opened;
        }
        return auto.paymentPreProcessing(payment, info);
      },
    },
    gate(ref) {
      let entered!: () => void;
      let open!: () => void;
      const enteredP = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      gates.set(ref, { entered, opened });
      return { entered: enteredP, open };
    },
  };
}

function eventOf<T extends NodeEvent['type']>(
  events$: Observable<NodeEvent>,
  type: T,
  match: (e: Extract<NodeEvent, { type: T }>) => boolean,
): Promise<Extract<NodeEvent, { type: T }>> {
  return firstValueFrom(
    events$.pipe(filter((e): e is Extract<NodeEvent, { type: T }> => e.type === type && match(e as never))),
  );
}

describe('both VASPs update the same payment at once', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(): Promise<{
    a: VaspNode;
    b: VaspNode;
    gates: Map<VaspNode, ReturnType<typeof gatedBusiness>>;
    relay: Relay;
    events: Array<{ node: string; event: NodeEvent }>;
    ids: [TestIdentity, TestIdentity];
    dbs: Awaited<ReturnType<typeof createNodeDatabase>>[];
  }> {
    const dbs = [await createNodeDatabase(), await createNodeDatabase()];
    for (const db of dbs) cleanups.push(db.dispose);
    const ids: [TestIdentity, TestIdentity] = [testIdentity(0x91), testIdentity(0x92)];
    const [gA, gB] = [gatedBusiness(), gatedBusiness()];
    const b = await createVaspNode(nodeConfig(ids[1], dbs[1]!.url, [{ identity: ids[0] }]), {
      business: gB.business,
    });
    cleanups.push(() => b.close());
    const relay = await createRelay(b.url);
    cleanups.push(() => relay.close());
    const a = await createVaspNode(nodeConfig(ids[0], dbs[0]!.url, [{ identity: ids[1], url: relay.url }]), {
      business: gA.business,
    });
    cleanups.push(() => a.close());
    const events: Array<{ node: string; event: NodeEvent }> = [];
    const subs = [
      a.events$.subscribe((event) => events.push({ node: 'A', event })),
      b.events$.subscribe((event) => events.push({ node: 'B', event })),
    ];
    cleanups.push(() => {
      for (const s of subs) s.unsubscribe();
    });
    return {
      a,
      b,
      gates: new Map([
        [a, gA],
        [b, gB],
      ]),
      relay,
      events,
      ids,
      dbs,
    };
  }

  it('the protocol server wins, the loser is told used_dependencies once, the payment completes', async () => {
    const { a, b, gates, relay, events, ids, dbs } = await start();
    const outcomes: Array<{ payer: string; ref: string; winner: string; loserCid: string }> = [];

    // Twice: once with the payer as protocol server, once with the payee as protocol server.
    for (const [payer, payee] of [
      [a, b],
      [b, a],
    ] as const) {
      const payerName = payer === a ? 'A' : 'B';
      const payeeName = payer === a ? 'B' : 'A';
      const { referenceId: ref, outcome$ } = payer.pay({ to: payee.address, amount: 42, currency: 'TIK' });
      const gate = gates.get(payee)!.gate(ref);
      const created = await lastValueFrom(outcome$);
      expect(created.status).toBe('success');
      await gate.entered; // the payee's business is reacting to the create, held at the gate

      // Hold the wire; then both sides update version `created.cid` of the payment.
      relay.hold();
      const v0 = created.request.command.payment;
      const payerUpdate: PaymentObject = { ...v0, sender: { ...v0.sender, metadata: ['contended'] } };
      const payerQueued = eventOf(payer.events$, 'command_queued', (e) => e.referenceId === ref);
      const payeeQueued = eventOf(payee.events$, 'command_queued', (e) => e.referenceId === ref);
      const payerOutcome = lastValueFrom(
        payer.channel(payee.address).send({ payment: payerUpdate, readVersion: created.cid }),
      );
      gate.open();
      const [mine, theirs] = await Promise.all([payerQueued, payeeQueued]);
      // Both updates are durable and sent; neither side has seen the other's.
      relay.release();

      const payerIsServer = isProtocolServer(payer.address, payee.address);
      const winner = payerIsServer ? payerName : payeeName;
      const loserCid = payerIsServer ? theirs.cid : mine.cid;
      const outcome = await payerOutcome;
      expect(outcome.status).toBe(payerIsServer ? 'success' : 'failure');
      if (!payerIsServer) expect(outcome.code).toBe('used_dependencies');

      // No livelock: the payment still completes, with nothing left in flight.
      await until(
        [a, b],
        async () => {
          for (const [node, peer] of [
            [a, b],
            [b, a],
          ] as const) {
            const head = await node.store.head(peer.address, ref);
            if (!head || head.open || node.channel(peer.address).inflight > 0) return false;
          }
          return true;
        },
        { timeoutMs: 60_000 },
      );
      outcomes.push({ payer: payerName, ref, winner, loserCid });
    }

    // Let every channel settle before counting what each business layer was told.
    await a.close();
    await b.close();
    for (const { ref, winner, loserCid } of outcomes) {
      const failed = events.filter(
        ({ event }) => event.type === 'command_failed' && event.referenceId === ref,
      );
      const loser = winner === 'A' ? 'B' : 'A';
      expect(failed.map(({ node, event }) => [node, event.type === 'command_failed' && event.code])).toEqual([
        [loser, 'used_dependencies'],
      ]);
      expect(failed[0]!.event).toMatchObject({ cid: loserCid });
    }
    // One run had the payer as protocol server, the other the payee.
    expect(outcomes.map((o) => o.winner === o.payer).sort()).toEqual([false, true]);

    const report = await expectIdenticalSignedLogs(
      { db: dbs[0]!, peer: ids[1].address },
      { db: dbs[1]!, peer: ids[0].address },
    );
    // The losers' commands are in both signed logs as used_dependencies, nothing else failed.
    const failures = report.logA.filter((r) => r.status === 'failure');
    expect(failures.map((r) => [r.cid, r.code]).sort()).toEqual(
      outcomes.map((o) => [o.loserCid, 'used_dependencies']).sort(),
    );
  });
});
