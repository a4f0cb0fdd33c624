import { describe, expect, it } from 'vitest';
import { DashboardDelta, DashboardSnapshot } from '../../src/dashboard/events.js';
import { createDashboardModel } from '../../src/dashboard/model.js';
import { readHealthEvent, readHealthSnapshot, readResyncEvent } from '../../src/dashboard/sources.js';

const PEER = 'lbr1pgfpyysjzgfpyysjzgfpyysjzggqqqqqqqqqqqqqxjt54z';

function setup(options: { logSize?: number } = {}) {
  let now = 1_000_000;
  const clock = { now: () => now };
  const model = createDashboardModel(
    { ...options, sampleWindowMs: 60_000 },
    {
      node: { address: 'lbr1me', epoch: 'e0', url: 'ws://127.0.0.1:1/parley/v1' },
      features: { health: true, resync: true },
      thresholds: { suspectPhi: 1, downPhi: 8 },
      clock,
    },
  );
  return { model, advance: (ms: number) => (now += ms), at: () => now };
}

describe('dashboard model', () => {
  it('folds channel events into rows and hands out each change once, in a numbered delta', () => {
    const { model } = setup();
    model.status([{ peer: PEER, state: 'disconnected', inflight: 0, openObjects: 0, peerEpoch: null }]);
    model.nodeEvent({ type: 'connected', peer: PEER, dialed: true });
    model.nodeEvent({ type: 'retransmit', peer: PEER, cid: 'c1', attempt: 2 });
    model.nodeEvent({ type: 'command_final', peer: PEER, cid: 'c1', status: 'success', code: null });
    model.nodeEvent({ type: 'command_received', peer: PEER, cid: 'c2', status: 'failure', code: 'x' });
    const delta = DashboardDelta.parse(model.takeDelta());
    expect(delta.seq).toBe(1);
    expect(delta.channels).toHaveLength(1);
    expect(delta.channels[0]).toMatchObject({
      connection: 'connected',
      retransmits: 1,
      commandsSent: 1,
      commandsReceived: 1,
      commandFailures: 1,
    });
    expect(delta.log.map((e) => e.kind)).toEqual(['connected', 'command_refused']);
    expect(model.takeDelta()).toBeUndefined();
    model.status([{ peer: PEER, state: 'connected', inflight: 3, openObjects: 2, peerEpoch: 'e1' }]);
    expect(model.takeDelta()).toMatchObject({
      seq: 2,
      channels: [{ inflight: 3, openObjects: 2, peerEpoch: 'e1' }],
    });
    // An unchanged status poll is not a change.
    model.status([{ peer: PEER, state: 'connected', inflight: 3, openObjects: 2, peerEpoch: 'e1' }]);
    expect(model.takeDelta()).toBeUndefined();
  });

  it('shows a peer_behind channel (LIP-1 HTTP too: no health row) with its stuck commands, until it clears', () => {
    const { model, at } = setup();
    model.status([{ peer: PEER, state: 'connected', inflight: 1, openObjects: 1, peerEpoch: null }]);
    model.takeDelta();
    for (const input of readHealthEvent({
      kind: 'peer_behind',
      peer: PEER,
      atMs: at(),
      commands: 1,
      cids: ['c1'],
      cause: 'waits',
      waits: 3,
    })) {
      model.health(input);
    }
    const behind = DashboardDelta.parse(model.takeDelta());
    expect(behind.channels[0]).toMatchObject({ peerBehind: { commands: 1, sinceMs: at() } });
    expect(behind.log).toMatchObject([{ kind: 'peer_behind', level: 'warn' }]);
    expect(behind.log[0]!.message).toContain('c1');
    // Sampled from the tracker: a second stuck command.
    model.peerBehind([{ peer: PEER, commands: 2, sinceMs: at() }]);
    expect(DashboardDelta.parse(model.takeDelta()).channels[0]).toMatchObject({
      peerBehind: { commands: 2 },
    });
    model.peerBehind([{ peer: PEER, commands: 2, sinceMs: at() }]);
    expect(model.takeDelta()).toBeUndefined();
    for (const input of readHealthEvent({
      kind: 'command_abandoned',
      peer: PEER,
      cid: 'c1',
      referenceId: 'r1',
    })) {
      model.health(input);
    }
    for (const input of readHealthEvent({
      kind: 'peer_behind_cleared',
      peer: PEER,
      final: 1,
      abandoned: 1,
    })) {
      model.health(input);
    }
    const cleared = DashboardDelta.parse(model.takeDelta());
    expect(cleared.channels[0]!.peerBehind).toBeUndefined();
    expect(cleared.log.map((e) => [e.kind, e.level])).toEqual([
      ['command_abandoned', 'warn'],
      ['peer_behind_cleared', 'info'],
    ]);
    // A sample after a restart (no event seen) sets it, and an empty one clears it.
    model.peerBehind([{ peer: PEER, commands: 1, sinceMs: at() }]);
    expect(DashboardSnapshot.parse(model.snapshot()).channels[0]).toMatchObject({
      peerBehind: { commands: 1 },
    });
    model.peerBehind([]);
    model.takeDelta();
    expect(DashboardSnapshot.parse(model.snapshot()).channels[0]!.peerBehind).toBeUndefined();
  });

  it('shows which channels a replica serves, logs lease changes, and ignores node-wide events', () => {
    const { model } = setup();
    model.status([{ peer: PEER, state: 'disconnected', inflight: 0, openObjects: 0, peerEpoch: null }]);
    expect(DashboardDelta.parse(model.takeDelta()).channels[0]).toMatchObject({ lease: null });
    model.status([
      { peer: PEER, state: 'disconnected', inflight: 0, openObjects: 0, peerEpoch: null, lease: 'standby' },
    ]);
    expect(DashboardDelta.parse(model.takeDelta()).channels[0]).toMatchObject({ lease: 'standby' });
    model.nodeEvent({ type: 'lease_acquired', peer: PEER, owner: 'eu-1' });
    model.status([
      { peer: PEER, state: 'connected', inflight: 0, openObjects: 0, peerEpoch: 'e1', lease: 'owner' },
    ]);
    model.nodeEvent({ type: 'lease_lost', peer: PEER, owner: 'eu-1', reason: 'taken_over' });
    model.nodeEvent({ type: 'upkeep_failed', task: 'prune_resync_runs', code: 'STORE_UNAVAILABLE' });
    const delta = DashboardDelta.parse(model.takeDelta());
    expect(delta.channels).toHaveLength(1);
    expect(delta.channels[0]).toMatchObject({ lease: 'owner', connection: 'connected' });
    expect(delta.log.map((e) => [e.kind, e.level])).toEqual([
      ['lease_acquired', 'info'],
      ['lease_lost', 'warn'],
    ]);
    expect(delta.log[1]!.message).toContain('taken_over');
    expect(DashboardSnapshot.parse(model.snapshot()).channels).toHaveLength(1);

    // Watched as owner, then standby: the health it showed is dropped, not left stale.
    model.health({ type: 'state', peer: PEER, state: 'healthy', phi: 0.2 });
    expect(DashboardDelta.parse(model.takeDelta()).channels[0]?.health).toMatchObject({ state: 'healthy' });
    model.status([
      { peer: PEER, state: 'disconnected', inflight: 0, openObjects: 0, peerEpoch: 'e1', lease: 'standby' },
    ]);
    const standby = DashboardDelta.parse(model.takeDelta()).channels[0]!;
    expect(standby.lease).toBe('standby');
    expect(standby.health).toBeUndefined();
  });

  it('logs health transitions at their level and flags a lost peer state until a resync completes', () => {
    const { model, advance, at } = setup();
    const events = [
      {
        kind: 'transition',
        peer: PEER,
        atMs: at(),
        from: 'unknown',
        to: 'healthy',
        cause: 'connected',
        phi: 0,
        silentMs: null,
      },
      {
        kind: 'transition',
        peer: PEER,
        atMs: at() + 2300,
        from: 'healthy',
        to: 'suspect',
        cause: 'silence',
        phi: 1.2,
        silentMs: 2300,
      },
      {
        kind: 'transition',
        peer: PEER,
        atMs: at() + 3100,
        from: 'suspect',
        to: 'down',
        cause: 'silence',
        phi: 8.1,
        silentMs: 3100,
      },
      {
        kind: 'peer_state_lost',
        peer: PEER,
        atMs: at() + 9000,
        previousEpoch: 'aaaaaaaa11',
        epoch: 'bbbbbbbb22',
        source: 'hello',
      },
    ];
    for (const e of events) for (const input of readHealthEvent(e)) model.health(input);
    advance(10_000);
    const delta = DashboardDelta.parse(model.takeDelta());
    expect(delta.log.map((e) => [e.kind, e.level])).toEqual([
      ['healthy', 'info'],
      ['suspect', 'warn'],
      ['down', 'error'],
      ['peer_state_lost', 'error'],
    ]);
    expect(delta.channels[0]?.health).toMatchObject({ state: 'down', phi: 8.1, peerStateLost: true });
    expect(delta.channels[0]?.peerEpoch).toBe('bbbbbbbb22');

    const started = readResyncEvent({
      type: 'resync_started',
      runId: 'r1',
      peer: PEER,
      reason: 'peer_state_lost',
    });
    model.resync(started!);
    model.resync(readResyncEvent({ type: 'resync_progress', runId: 'r1', peer: PEER, done: 3, total: 10 })!);
    const running = DashboardDelta.parse(model.takeDelta());
    expect(running.resyncRuns[0]).toMatchObject({ id: 'r1', status: 'running', done: 3, total: 10 });
    expect(running.channels[0]?.resync).toMatchObject({ status: 'running' });

    model.resync(
      readResyncEvent({
        id: 'r1',
        peer: PEER,
        outcome: 'repaired',
        objectsSent: 10,
        rounds: 4,
        finishedAtMs: at(),
      })!,
    );
    const done = DashboardDelta.parse(model.takeDelta());
    expect(done.resyncRuns[0]).toMatchObject({
      status: 'completed',
      outcome: 'repaired',
      done: 10,
      objectsSent: 10,
    });
    expect(done.channels[0]?.health?.peerStateLost).toBe(false);
    expect(done.log.map((e) => e.kind)).toEqual(['resync_completed']);
    expect(DashboardSnapshot.parse(model.snapshot()).resyncRuns).toHaveLength(1);
  });

  it('samples phi and RTT from health snapshots; no RTT point while the peer is down', () => {
    const { model, advance, at } = setup();
    const snap = (state: string, phi: number, rttMs: number | null) =>
      readHealthSnapshot(
        { peer: PEER, state, sinceMs: at(), phi, rttMs, srttMs: rttMs, silentMs: 100 },
        at(),
      )!;
    model.health(snap('healthy', 0.1, 1.5));
    advance(500);
    model.health(snap('healthy', 0.4, 1.7));
    advance(5000);
    model.health(snap('down', 9, 1.7));
    const snapshot = DashboardSnapshot.parse(model.snapshot());
    expect(snapshot.samples.map((s) => [s.phi, s.rttMs])).toEqual([
      [0.1, 1.5],
      [0.4, 1.7],
      [9, null],
    ]);
    expect(snapshot.channels[0]?.health).toMatchObject({
      state: 'down',
      rttMs: 1.7,
      lastHeartbeatAtMs: at() - 100,
    });
    // Samples older than the window are dropped.
    advance(61_000);
    expect(model.snapshot().samples).toHaveLength(0);
  });

  it('lets a state event win over a sampled snapshot taken just after it', () => {
    const { model, advance, at } = setup();
    model.health(
      readHealthEvent({
        kind: 'transition',
        peer: PEER,
        atMs: at(),
        from: 'unknown',
        to: 'healthy',
        cause: 'connected',
        phi: 0,
      })[0]!,
    );
    advance(100);
    model.health(readHealthSnapshot({ peer: PEER, state: 'healthy', phi: 0, rttMs: 1 }, at())!);
    model.health(
      readHealthEvent({
        kind: 'transition',
        peer: PEER,
        atMs: at(),
        from: 'healthy',
        to: 'down',
        cause: 'silence',
        phi: 9,
      })[0]!,
    );
    const log = model.takeDelta()!.log.map((e) => e.kind);
    expect(log).toEqual(['healthy', 'down']);
  });

  it('lists the persisted runs of earlier node runs before its own, without logging them', () => {
    const { model, at } = setup();
    model.resync(
      readResyncEvent({ type: 'resync_started', runId: 'live', peer: PEER, reason: 'connect', atMs: at() })!,
    );
    const record = (id: number, runId: string, startedAtMs: number) => ({
      id,
      peer: PEER,
      reason: 'peer_state_lost',
      startedAtMs,
      finishedAtMs: startedAtMs + 40,
      outcome: 'repaired',
      objectsSent: 3,
      objectsReceived: 0,
      bytesSent: 900,
      bytesReceived: 0,
      rounds: 2,
      detail: { runId, role: 'leader' },
    });
    const records = [record(2, 'b', at() - 5000), record(1, 'a', at() - 9000), record(3, 'live', at())];
    model.pastResyncRuns(records.flatMap((r) => readResyncEvent(r) ?? []));
    const snapshot = DashboardSnapshot.parse(model.snapshot());
    expect(snapshot.resyncRuns.map((r) => [r.id, r.status])).toEqual([
      ['a', 'completed'],
      ['b', 'completed'],
      ['live', 'running'],
    ]);
    expect(snapshot.resyncRuns[0]).toMatchObject({
      outcome: 'repaired',
      finishedAtMs: at() - 8960,
      objectsSent: 3,
    });
    expect(snapshot.log.map((e) => e.kind)).toEqual(['resync_started']);
    expect(snapshot.channels[0]?.resync?.id).toBe('live');
  });

  it('keeps the log bounded', () => {
    const { model } = setup({ logSize: 5 });
    for (let i = 0; i < 20; i++) model.nodeEvent({ type: 'frame_refused', peer: PEER, code: `E${i}` });
    const snapshot = model.snapshot();
    expect(snapshot.log.map((e) => e.id)).toEqual([16, 17, 18, 19, 20]);
  });
});

describe('reading health and resync events', () => {
  it('reads every health event kind of the monitor', () => {
    const kinds = (e: Record<string, unknown>) =>
      readHealthEvent({ peer: PEER, atMs: 1, ...e }).map((i) => i.type);
    expect(kinds({ kind: 'transition', from: 'healthy', to: 'suspect', cause: 'silence', phi: 2 })).toEqual([
      'state',
    ]);
    expect(kinds({ kind: 'peer_state_lost', previousEpoch: 'a', epoch: 'b' })).toEqual(['peer_state_lost']);
    expect(
      kinds({ kind: 'diverged', local: { count: 1, digest: 'x' }, remote: { count: 2, digest: 'y' } }),
    ).toEqual(['diverged']);
    expect(kinds({ kind: 'converged' })).toEqual(['converged']);
    expect(kinds({ kind: 'epoch_seen', epoch: 'a', source: 'hello' })).toEqual(['other']);
    expect(kinds({ kind: 'zombie_refused', epoch: 'a', currentEpoch: 'b' })).toEqual(['other']);
    expect(kinds({ kind: 'heartbeat_refused', code: 'X', closeCode: 4400 })).toEqual(['other']);
    expect(kinds({ type: 'heartbeat', rttMs: 1.2, phi: 0.3 })).toEqual(['sample']);
    expect(readHealthEvent({ kind: 'transition', to: 'healthy' })).toEqual([]); // no peer
    expect(readHealthEvent('nonsense')).toEqual([]);
  });

  it('reads a persisted resync run record', () => {
    const record = {
      id: 7,
      peer: PEER,
      reason: 'peer_state_lost',
      startedAtMs: 10,
      finishedAtMs: 20,
      outcome: 'failed',
      objectsSent: 1,
      objectsReceived: 0,
      bytesSent: 100,
      bytesReceived: 0,
      rounds: 2,
      detail: { error: 'SYNC_TIMEOUT' },
    };
    expect(readResyncEvent(record)).toMatchObject({
      id: '7',
      status: 'failed',
      outcome: 'failed',
      rounds: 2,
    });
    expect(readResyncEvent({ peer: PEER })).toBeUndefined();
  });
});
