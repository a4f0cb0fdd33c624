/**
 * The `peer_behind` tracker on its own: command events in, `peer_behind` / `peer_behind_cleared`
 * out, time from a virtual scheduler.
 */
import { Subject, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ChannelEvent } from '../../src/channel/channel.js';
import {
  createPeerBehindTracker,
  type HealthEvent,
  resolveHealthOptions,
  WAITS_BEFORE_RESYNC,
} from '../../src/health/index.js';

const PEER = 'lbr1peer';

function setup(transport: 'ws' | 'lip1-http', options = {}) {
  const scheduler = new VirtualTimeScheduler();
  const tracker = createPeerBehindTracker(options, { scheduler });
  const channel = new Subject<ChannelEvent>();
  const seen: HealthEvent[] = [];
  tracker.events$.subscribe((e) => seen.push(e));
  tracker.watch(PEER, transport, channel);
  const wait = (cid: string, waits: number) =>
    channel.next({ type: 'command_waiting', peer: PEER, cid, referenceId: `ref-${cid}`, waits });
  const final = (cid: string) =>
    channel.next({
      type: 'command_final',
      peer: PEER,
      cid,
      status: 'success',
      code: null,
      referenceId: `ref-${cid}`,
      myStatus: null,
      theirStatus: null,
    });
  const dropped = (cid: string) =>
    channel.next({ type: 'command_dropped', peer: PEER, cid, code: 'COMMAND_ABANDONED' });
  const advance = (ms: number) => {
    scheduler.schedule(() => undefined, ms);
    scheduler.flush();
  };
  return { tracker, seen, wait, final, dropped, advance };
}

describe('peer_behind', () => {
  it('LIP-1 HTTP: the third `wait` to one command raises it once; it clears when every stuck command is final or abandoned', () => {
    const t = setup('lip1-http');
    t.wait('c1', 1);
    t.wait('c1', 2);
    expect(t.seen).toEqual([]);
    expect(t.tracker.snapshot()).toEqual([]);
    t.advance(5000);
    t.wait('c1', 3);
    expect(t.seen).toEqual([
      { kind: 'peer_behind', peer: PEER, atMs: 5000, commands: 1, cids: ['c1'], cause: 'waits', waits: 3 },
    ]);
    t.wait('c2', 3);
    t.wait('c1', 4);
    // One condition, two stuck commands: no second event.
    expect(t.seen).toHaveLength(1);
    expect(t.tracker.snapshot()).toEqual([{ peer: PEER, sinceMs: 5000, commands: 2, cids: ['c1', 'c2'] }]);
    t.final('c3'); // not stuck: changes nothing
    t.dropped('c1');
    expect(t.seen).toHaveLength(1);
    expect(t.tracker.snapshot()[0]).toMatchObject({ commands: 1, cids: ['c2'] });
    t.advance(1000);
    t.final('c2');
    expect(t.seen[1]).toEqual({
      kind: 'peer_behind_cleared',
      peer: PEER,
      atMs: 6000,
      final: 1,
      abandoned: 1,
    });
    expect(t.tracker.snapshot()).toEqual([]);
  });

  it('LIP-1 HTTP: the number of `wait`s is configurable', () => {
    const t = setup('lip1-http', { peerBehindAfterWaits: 5 });
    for (let waits = 1; waits <= 4; waits++) t.wait('c1', waits);
    expect(t.seen).toEqual([]);
    t.wait('c1', 5);
    expect(t.seen).toMatchObject([{ kind: 'peer_behind', waits: 5 }]);
  });

  it('ws: `wait`s alone never raise it (resync repairs); a `wait` after two resync runs ended since the resync threshold does', () => {
    const t = setup('ws');
    for (let waits = 1; waits <= 30; waits++) t.wait('c1', waits);
    expect(t.seen).toEqual([]);

    const u = setup('ws');
    // A run that ended before the command reached its threshold does not count.
    u.wait('c1', 1);
    u.tracker.runEnded(PEER);
    for (let waits = 2; waits <= WAITS_BEFORE_RESYNC; waits++) u.wait('c1', waits);
    u.tracker.runEnded(PEER);
    u.wait('c1', 4);
    expect(u.seen).toEqual([]);
    u.tracker.runEnded(PEER);
    u.wait('c1', 5);
    expect(u.seen).toMatchObject([{ kind: 'peer_behind', cids: ['c1'], cause: 'resync_runs', waits: 5 }]);
    // The peer progresses at last: the command is final, the condition clears.
    u.final('c1');
    expect(u.seen[1]).toMatchObject({ kind: 'peer_behind_cleared', final: 1, abandoned: 0 });
  });

  it('ws: a command that becomes final after a resync is never stuck', () => {
    const t = setup('ws');
    for (let waits = 1; waits <= WAITS_BEFORE_RESYNC; waits++) t.wait('c1', waits);
    t.tracker.runEnded(PEER);
    t.tracker.runEnded(PEER);
    t.final('c1');
    t.tracker.runEnded(PEER);
    expect(t.seen).toEqual([]);
  });

  it('forgets the stuck commands of a channel this replica no longer serves, silently', () => {
    const t = setup('lip1-http');
    t.wait('c1', 3);
    t.tracker.forget(PEER);
    expect(t.tracker.snapshot()).toEqual([]);
    t.final('c1');
    expect(t.seen.map((e) => e.kind)).toEqual(['peer_behind']);
    // Served again: found again.
    t.wait('c2', 3);
    expect(t.tracker.snapshot()).toMatchObject([{ cids: ['c2'] }]);
  });

  it('forgets a channel whose watch ended, and completes on close', () => {
    const scheduler = new VirtualTimeScheduler();
    const tracker = createPeerBehindTracker({}, { scheduler });
    const channel = new Subject<ChannelEvent>();
    const sub = tracker.watch(PEER, 'lip1-http', channel);
    channel.next({ type: 'command_waiting', peer: PEER, cid: 'c1', referenceId: 'r', waits: 3 });
    expect(tracker.snapshot()).toHaveLength(1);
    sub.unsubscribe();
    expect(tracker.snapshot()).toEqual([]);
    let completed = false;
    tracker.events$.subscribe({ complete: () => (completed = true) });
    tracker.close();
    expect(completed).toBe(true);
  });

  it('refuses thresholds below 1', () => {
    expect(() => resolveHealthOptions({ peerBehindAfterWaits: 0 })).toThrow(/peerBehindAfterWaits/);
    expect(() => resolveHealthOptions({ peerBehindAfterRuns: 1.5 })).toThrow(/peerBehindAfterRuns/);
    expect(resolveHealthOptions({})).toMatchObject({ peerBehindAfterWaits: 3, peerBehindAfterRuns: 2 });
  });
});
