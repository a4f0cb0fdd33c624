/**
 * Health against a peer in another process (real sockets, real SQLite files): SIGSTOP makes it
 * `down`, SIGCONT `healthy` again; a wiped database shows as `peer_state_lost` at the first
 * hello; heavy command load on both processes raises no false `suspect` or `down`.
 *
 * Every wait is for an event, with a generous budget: these test behaviour, not speed.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { filter, firstValueFrom, lastValueFrom, merge, type Observable, take, timeout } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthEvent } from '../../src/health/status.js';
import { createVaspNode, type VaspNode } from '../../src/node.js';
import { nodeConfig, type TestIdentity, tempDir, testIdentity } from '../helpers/nodes.js';
import { startHealthChild } from './child.js';

const BUDGET_MS = 60_000;

function next<T>(source$: Observable<T>, match: (value: T) => boolean, what: string): Promise<T> {
  return firstValueFrom(
    source$.pipe(
      filter(match),
      take(1),
      timeout({ first: BUDGET_MS, with: () => Promise.reject(new Error(`timed out waiting for ${what}`)) }),
    ),
  );
}

const isState = (peer: string, to: string) => (e: HealthEvent) =>
  e.kind === 'transition' && e.peer === peer && e.to === to;

describe('health against a peer process', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(a: TestIdentity, b: TestIdentity) {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const nodeA: VaspNode = await createVaspNode(
      nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [{ identity: b }]),
    );
    cleanups.push(() => nodeA.close());
    const bDb = join(dir.path, 'b.db');
    const startB = async (name = 'b') => {
      const child = await startHealthChild(
        dir.path,
        name,
        nodeConfig(b, `file:${bDb}`, [{ identity: a, url: nodeA.url }]),
      );
      cleanups.push(() => child.stop());
      return child;
    };
    return { nodeA, bDb, startB };
  }

  it('SIGSTOP on the peer process makes it down; SIGCONT makes it healthy again', async () => {
    const a = testIdentity(0x61);
    const b = testIdentity(0x62);
    const { nodeA, startB } = await setup(a, b);
    const healthy = next(nodeA.health$, isState(b.address, 'healthy'), 'B healthy');
    const child = await startB();
    await healthy;

    const suspect = next(nodeA.health$, isState(b.address, 'suspect'), 'B suspect');
    const down = next(nodeA.health$, isState(b.address, 'down'), 'B down');
    child.signal('SIGSTOP');
    await suspect;
    const event = await down;
    expect(event).toMatchObject({ cause: 'silence' });
    expect((await fetch(`http://127.0.0.1:${nodeA.port}/healthz`)).status).toBe(503);

    const back = next(nodeA.health$, isState(b.address, 'healthy'), 'B healthy again');
    child.signal('SIGCONT');
    await back;
    expect((await fetch(`http://127.0.0.1:${nodeA.port}/healthz`)).status).toBe(200);
  });

  it('a peer restarted on a wiped database raises peer_state_lost at its first hello, before any command', async () => {
    const a = testIdentity(0x63);
    const b = testIdentity(0x64);
    const { nodeA, bDb, startB } = await setup(a, b);
    const seen: string[] = [];
    merge(nodeA.health$, nodeA.events$).subscribe((e) => {
      if ('kind' in e && (e.kind === 'epoch_seen' || e.kind === 'peer_state_lost')) seen.push(e.kind);
      else if ('type' in e && e.type === 'connected') seen.push('connected');
    });

    const first = next(nodeA.health$, (e) => e.kind === 'epoch_seen', 'epoch_seen');
    const life1 = await startB('b1');
    await first;
    await lastValueFrom(nodeA.pay({ to: b.address, amount: 7, currency: 'TIK' }).outcome$);
    await life1.stop();

    for (const suffix of ['', '-wal', '-shm']) rmSync(`${bDb}${suffix}`, { force: true });
    const lost = next(nodeA.health$, (e) => e.kind === 'peer_state_lost', 'peer_state_lost');
    const life2 = await startB('b2');
    expect(await lost).toMatchObject({
      peer: b.address,
      previousEpoch: life1.epoch,
      epoch: life2.epoch,
      source: 'hello',
    });
    expect(seen).toEqual(['epoch_seen', 'connected', 'peer_state_lost', 'connected']);
    await nodeA.health.flush();
    const history = await nodeA.health.history({ peer: b.address, kinds: ['peer_state_lost'] });
    expect(history[0]?.detail).toMatchObject({ previousEpoch: life1.epoch, epoch: life2.epoch });
  });

  it('keeps heartbeats in rhythm under sustained command load on both processes: no suspect, no down', async () => {
    const a = testIdentity(0x65);
    const b = testIdentity(0x66);
    const { nodeA, startB } = await setup(a, b);
    const healthy = next(nodeA.health$, isState(b.address, 'healthy'), 'B healthy');
    const child = await startB();
    await healthy;

    const trouble: HealthEvent[] = [];
    const isTrouble = (e: HealthEvent) => e.kind === 'transition' && e.to !== 'healthy';
    const subs = [
      nodeA.health$.pipe(filter(isTrouble)).subscribe((e) => trouble.push(e)),
      child.health$.pipe(filter(isTrouble)).subscribe((e) => trouble.push(e)),
    ];
    const channel = nodeA.health.channel(b.address)!;
    const before = { received: channel.snapshot().heartbeatsReceived, at: Date.now() };

    // Both sides keep 64 payments in flight (each is five commands: two signatures and a
    // durable commit per command on each side) until A has settled `target` of its own.
    child.send({ op: 'load', to: a.address, concurrency: 64 });
    const target = 400;
    let settled = 0;
    await new Promise<void>((resolve, reject) => {
      let running = true;
      const loop = async (): Promise<void> => {
        while (running && settled < target) {
          const outcome = await lastValueFrom(
            nodeA.pay({ to: b.address, amount: 1, currency: 'TIK' }).outcome$,
          );
          if (outcome.status === 'success') settled++;
        }
      };
      Promise.all(Array.from({ length: 64 }, loop)).then(() => resolve(), reject);
      setTimeout(() => {
        running = false;
        reject(new Error(`only ${settled} of ${target} payments settled`));
      }, 200_000).unref();
    });
    child.send({ op: 'stop-load' });
    const load = await child.line(
      (l): l is Extract<typeof l, { t: 'load' }> => l.t === 'load',
      BUDGET_MS,
      'load report',
    );
    for (const s of subs) s.unsubscribe();

    expect(load.settled).toBeGreaterThan(0);
    expect(trouble).toEqual([]);
    const elapsedS = (Date.now() - before.at) / 1000;
    const received = channel.snapshot().heartbeatsReceived - before.received;
    // About one a second (timers drift by the event-loop lag of a busy process, hence 0.8).
    expect(received).toBeGreaterThanOrEqual(Math.floor(elapsedS * 0.8) - 2);
    expect(channel.state).toBe('healthy');
  }, 240_000);
});
