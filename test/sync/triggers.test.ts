import { firstValueFrom, Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ChannelEvent, IncomingCommand } from '../../src/channel/channel.js';
import type { ResyncEvent } from '../../src/sync/resync.js';
import { runHealthTriggers, runOnConnect, watchResyncTriggers } from '../../src/sync/triggers.js';

/** A channel, a resync and a driver made of subjects and call logs. */
function rig(options: { recoverFails?: boolean } = {}) {
  const commands = new Subject<IncomingCommand>();
  const channelEvents = new Subject<ChannelEvent>();
  const syncEvents = new Subject<ResyncEvent>();
  const runs: Array<{ reason: string; scope?: readonly string[] }> = [];
  const calls: string[] = [];
  const failures = new Subject<string>();
  const sync = {
    events$: syncEvents.asObservable(),
    run: (reason: string, scope?: readonly string[]) => {
      runs.push(scope ? { reason, scope } : { reason });
      return Promise.resolve({} as never);
    },
  };
  const subs = watchResyncTriggers({
    peer: 'peer-b',
    sync,
    channel: {
      commands$: commands.asObservable(),
      events$: channelEvents.asObservable(),
      retransmitNow: () => calls.push('retransmitNow'),
      abandon: (cid, error) => calls.push(`abandon ${cid} ${(error as { code?: string }).code}`),
    },
    driver: {
      recover: async () => {
        calls.push('recover');
        if (options.recoverFails) throw new Error('store down');
      },
      forkLost: async (fork) => {
        calls.push(`forkLost ${fork.referenceId} ${fork.droppedPending.join(',')}`);
      },
    },
    peerBehind: { runEnded: (peer) => calls.push(`runEnded ${peer}`) },
    waitsBeforeResync: 3,
    report: (task, error, peer) => failures.next(`${task} ${peer} ${(error as Error).message}`),
  });
  const waiting = (referenceId: string, waits: number) =>
    channelEvents.next({ type: 'command_waiting', peer: 'peer-b', cid: 'c', referenceId, waits });
  const finished = (objectsSent: number, objectsReceived: number) =>
    syncEvents.next({ type: 'resync_finished', objectsSent, objectsReceived } as unknown as ResyncEvent);
  return { commands, syncEvents, runs, calls, failures, subs, waiting, finished };
}

describe('resync triggers', () => {
  it('runs a scoped resync on a used_dependencies answer, and on nothing else', () => {
    const r = rig();
    r.commands.next({
      status: 'failure',
      code: 'used_dependencies',
      record: { referenceId: 'ref-1' },
    } as never);
    r.commands.next({ status: 'failure', code: 'other', record: { referenceId: 'ref-2' } } as never);
    r.commands.next({ status: 'success', record: { referenceId: 'ref-3' } } as never);
    expect(r.runs).toEqual([{ reason: 'used_dependencies', scope: ['ref-1'] }]);
  });

  it('runs a command_waiting resync at the third wait and every tenth, once per object and interval', () => {
    const r = rig();
    for (const waits of [1, 2, 4, 5]) r.waiting('ref-1', waits);
    expect(r.runs).toEqual([]);
    r.waiting('ref-1', 3);
    r.waiting('ref-1', 10); // within the interval: held back
    r.waiting('ref-2', 20);
    expect(r.runs).toEqual([
      { reason: 'command_waiting', scope: ['ref-1'] },
      { reason: 'command_waiting', scope: ['ref-2'] },
    ]);
  });

  it('after a run that moved objects retransmits (and recovers what it received); after one that moved nothing only ends peer_behind', async () => {
    const r = rig();
    r.finished(0, 0);
    r.finished(2, 0);
    r.finished(0, 1);
    await Promise.resolve();
    expect(r.calls).toEqual([
      'runEnded peer-b',
      'runEnded peer-b',
      'retransmitNow',
      'runEnded peer-b',
      'retransmitNow',
      'recover',
    ]);
  });

  it('reports a recovery after a run that fails (background_failed at the node)', async () => {
    const r = rig({ recoverFails: true });
    const failure = firstValueFrom(r.failures);
    r.finished(0, 1);
    expect(await failure).toBe('recover_after_resync peer-b store down');
  });

  it('ends my commands on a lost fork with SYNC_FORK_LOST and tells the driver', () => {
    const r = rig();
    r.syncEvents.next({
      type: 'fork_lost',
      peer: 'peer-b',
      referenceId: 'ref-1',
      keep: null,
      droppedCids: ['x'],
      droppedPending: ['c1', 'c2'],
    });
    expect(r.calls).toEqual([
      'abandon c1 SYNC_FORK_LOST',
      'abandon c2 SYNC_FORK_LOST',
      'forkLost ref-1 c1,c2',
    ]);
  });

  it('stops when its subscriptions end', () => {
    const r = rig();
    for (const sub of r.subs) sub.unsubscribe();
    r.waiting('ref-1', 3);
    r.finished(1, 1);
    expect(r.runs).toEqual([]);
    expect(r.calls).toEqual([]);
  });

  it('runs the health triggers on their peer, leaving a new epoch to the run on connect when that is on', () => {
    const triggers = new Subject<{ kind: string; peer: string }>();
    const reasons: string[] = [];
    const sync = (peer: string) => ({
      run: (reason: string) => {
        reasons.push(`${peer} ${reason}`);
        return Promise.resolve({} as never);
      },
    });
    const syncs = new Map([['peer-b', sync('peer-b')]]);
    const withConnect = runHealthTriggers(triggers, syncs, { onConnect: true });
    triggers.next({ kind: 'peer_state_lost', peer: 'peer-b' });
    triggers.next({ kind: 'diverged', peer: 'peer-b' });
    triggers.next({ kind: 'diverged', peer: 'unknown' });
    withConnect.unsubscribe();
    const without = runHealthTriggers(triggers, syncs, { onConnect: false });
    triggers.next({ kind: 'peer_state_lost', peer: 'peer-b' });
    without.unsubscribe();
    expect(reasons).toEqual(['peer-b diverged', 'peer-b peer_state_lost']);
  });

  it('runs on connect on the side that dialed only', () => {
    const reasons: string[] = [];
    const sync = {
      run: (reason: string) => {
        reasons.push(reason);
        return Promise.resolve({} as never);
      },
    };
    runOnConnect(sync, { dialed: false });
    runOnConnect(sync, { dialed: true });
    expect(reasons).toEqual(['connect']);
  });
});
