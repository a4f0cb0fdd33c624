import { describe, expect, it } from 'vitest';
import { DashboardDelta, DashboardSnapshot } from '../../src/dashboard/events.js';
import { createDashboardModel } from '../../src/dashboard/model.js';
import {
  healthInputs,
  isDashboardEvent,
  pastRunInput,
  resyncInput,
  snapshotInput,
} from '../../src/dashboard/sources.js';
import type { ChannelHealthSnapshot, HealthEvent } from '../../src/health/status.js';
import type { ResyncRunRecord } from '../../src/sync/ports.js';
import type { ResyncEvent } from '../../src/sync/resync.js';
import type { RestoreEvent } from '../../src/sync/types.js';

const PEER = 'lbr1pgfpyysjzgfpyysjzgfpyysjzggqqqqqqqqqqqqqxjt54z';

const readHealthEvent = (event: HealthEvent) => healthInputs(event);

/** A health snapshot of PEER with `fields` over quiet defaults. */
function healthSnapshot(fields: Partial<ChannelHealthSnapshot>): ChannelHealthSnapshot {
  return {
    peer: PEER,
    state: 'healthy',
    sinceMs: 0,
    connected: true,
    connectionId: 'c',
    phi: 0,
    rttMs: null,
    srttMs: null,
    silentMs: null,
    heartbeatsSent: 0,
    heartbeatsReceived: 0,
    peerEpoch: null,
    local: { count: 0, digest: '' },
    remote: null,
    localInflight: 0,
    remoteInflight: null,
    diverged: false,
    ...fields,
  } as ChannelHealthSnapshot;
}

/** A resync run event of PEER with `fields` over zero counters. */
function runEvent(
  type: 'resync_started' | 'resync_progress' | 'resync_finished',
  runId: string,
  fields: Partial<Extract<ResyncEvent, { role: unknown }>> = {},
): ResyncEvent {
  return {
    type,
    peer: PEER,
    runId,
    role: 'leader',
    reason: 'peer_state_lost',
    phase: 'list',
    done: 0,
    total: 0,
    objectsSent: 0,
    objectsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    rounds: 0,
    atMs: 0,
    ...fields,
  } as ResyncEvent;
}

/** A restore event of PEER: a leader's restore on demand, started at 5000, with `fields`. */
function restoreEvent(fields: Partial<RestoreEvent>): RestoreEvent {
  const state = fields.state ?? 'running';
  return {
    type: state === 'finished' ? 'restore_finished' : 'restore_progress',
    peer: PEER,
    role: 'leader',
    reason: 'on_demand',
    state,
    compared: 0,
    moved: 0,
    after: null,
    startedAtMs: 5_000,
    atMs: 5_000,
    movedNow: 0,
    ...fields,
  };
}

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
    model.nodeEvent({
      type: 'command_final',
      peer: PEER,
      cid: 'c1',
      status: 'success',
      code: null,
      referenceId: 'ref',
      myStatus: null,
      theirStatus: null,
    });
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
      atMs: at(),
      cid: 'c1',
      referenceId: 'r1',
      readVersion: null,
      writeVersion: 'v1',
      code: 'COMMAND_ABANDONED',
      requestJws: 'jws',
    })) {
      model.health(input);
    }
    for (const input of readHealthEvent({
      kind: 'peer_behind_cleared',
      peer: PEER,
      atMs: at(),
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
    // A node-wide event is not one the dashboard shows (the server filters it out).
    expect(isDashboardEvent({ type: 'upkeep_failed' })).toBe(false);
    expect(isDashboardEvent({ type: 'lease_lost' })).toBe(true);
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
    const events: HealthEvent[] = [
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

    model.resync(resyncInput(runEvent('resync_started', 'r1', { atMs: at() }))!);
    model.resync(resyncInput(runEvent('resync_progress', 'r1', { done: 3, total: 10, atMs: at() }))!);
    const running = DashboardDelta.parse(model.takeDelta());
    expect(running.resyncRuns[0]).toMatchObject({ id: 'r1', status: 'running', done: 3, total: 10 });
    expect(running.channels[0]?.resync).toMatchObject({ status: 'running' });

    model.resync(
      resyncInput(
        runEvent('resync_finished', 'r1', {
          outcome: 'repaired',
          done: 3,
          total: 10,
          objectsSent: 10,
          rounds: 4,
          atMs: at(),
        }),
      )!,
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
    // The summary still counts the state loss, with its time, after the resync completed.
    expect(DashboardSnapshot.parse(model.snapshot()).stateLosses).toEqual([{ peer: PEER, atMs: 1_009_000 }]);
  });

  it('samples phi and RTT from health snapshots; no RTT (point or value) while the peer is down', () => {
    const { model, advance, at } = setup();
    const snap = (state: 'healthy' | 'down', phi: number, rttMs: number | null) =>
      snapshotInput(healthSnapshot({ state, sinceMs: at(), phi, rttMs, srttMs: rttMs, silentMs: 100 }), at());
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
      rttMs: null,
      srttMs: null,
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
        silentMs: null,
      })[0]!,
    );
    advance(100);
    model.health(snapshotInput(healthSnapshot({ state: 'healthy', phi: 0, rttMs: 1 }), at()));
    model.health(
      readHealthEvent({
        kind: 'transition',
        peer: PEER,
        atMs: at(),
        from: 'healthy',
        to: 'down',
        cause: 'silence',
        phi: 9,
        silentMs: 3000,
      })[0]!,
    );
    const log = model.takeDelta()!.log.map((e) => e.kind);
    expect(log).toEqual(['healthy', 'down']);
  });

  it('lists the persisted runs of earlier node runs before its own, without logging them', () => {
    const { model, at } = setup();
    model.resync(resyncInput(runEvent('resync_started', 'live', { reason: 'connect', atMs: at() }))!);
    const record = (id: number, runId: string, startedAtMs: number): ResyncRunRecord => ({
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
    model.pastResyncRuns(records.map(pastRunInput));
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

  it("shows a channel's closed-object restore: started, each batch on the row only, waiting, going on, finished", () => {
    const { model } = setup();
    expect(isDashboardEvent(restoreEvent({}))).toBe(true);
    model.status([{ peer: PEER, state: 'connected', inflight: 0, openObjects: 0, peerEpoch: null }]);
    model.takeDelta();
    model.nodeEvent(restoreEvent({}));
    const started = DashboardDelta.parse(model.takeDelta());
    expect(started.channels[0]?.restore).toEqual({
      state: 'running',
      role: 'leader',
      reason: 'on_demand',
      moved: 0,
      compared: 0,
      startedAtMs: 5_000,
      atMs: 5_000,
      error: null,
      finishedAtMs: null,
    });
    expect(started.log.map((e) => [e.kind, e.level])).toEqual([['restore_started', 'info']]);
    expect(started.log[0]!.message).toContain('led by this node');
    // Batches move the row, not the log.
    for (let i = 1; i <= 3; i++)
      model.nodeEvent(restoreEvent({ moved: i * 50, compared: i * 400, atMs: 5_000 + i, movedNow: 50 }));
    const batches = DashboardDelta.parse(model.takeDelta());
    expect(batches.channels[0]?.restore).toMatchObject({ state: 'running', moved: 150, compared: 1200 });
    expect(batches.log).toEqual([]);
    // The link went: waiting with the reason, once (warn); then it goes on.
    const error = 'SYNC_RESTORE_STALLED';
    model.nodeEvent(restoreEvent({ state: 'waiting', moved: 150, compared: 1200, error, atMs: 6_000 }));
    model.nodeEvent(restoreEvent({ state: 'waiting', moved: 150, compared: 1200, error, atMs: 6_001 }));
    const waiting = DashboardDelta.parse(model.takeDelta());
    expect(waiting.channels[0]?.restore).toMatchObject({ state: 'waiting', error });
    expect(waiting.log.map((e) => [e.kind, e.level])).toEqual([['restore_waiting', 'warn']]);
    expect(waiting.log[0]!.message).toContain(error);
    model.nodeEvent(restoreEvent({ moved: 150, compared: 1200, atMs: 7_000 }));
    const resumed = DashboardDelta.parse(model.takeDelta());
    expect(resumed.channels[0]?.restore).toMatchObject({ state: 'running', error: null });
    expect(resumed.log.map((e) => [e.kind, e.level])).toEqual([['restore_resumed', 'info']]);
    model.nodeEvent(restoreEvent({ state: 'finished', moved: 5_000, compared: 9_000, atMs: 65_000 }));
    const finished = DashboardDelta.parse(model.takeDelta());
    expect(finished.channels[0]?.restore).toMatchObject({
      state: 'finished',
      moved: 5_000,
      finishedAtMs: 65_000,
      error: null,
    });
    expect(finished.log.map((e) => [e.kind, e.level])).toEqual([['restore_finished', 'info']]);
    expect(finished.log[0]!.message).toContain('5,000 restored, 9,000 compared in 60 s');

    // Then the peer restores this node: a new restore, its own start line, named by the peer.
    model.nodeEvent(restoreEvent({ role: 'follower', reason: 'peer_state_lost', startedAtMs: 70_000 }));
    model.nodeEvent(restoreEvent({ role: 'follower', startedAtMs: 70_000, moved: 20, movedNow: 20 }));
    const follower = DashboardDelta.parse(model.takeDelta());
    expect(follower.channels[0]?.restore).toMatchObject({ role: 'follower', moved: 20, finishedAtMs: null });
    expect(follower.log.map((e) => e.kind)).toEqual(['restore_started']);
    expect(follower.log[0]!.message).toContain('led by lbr1pgfp');
    expect(DashboardSnapshot.parse(model.snapshot()).channels[0]?.restore).toMatchObject({ moved: 20 });
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
    const base = { peer: PEER, atMs: 1 };
    const kinds = (e: HealthEvent) => healthInputs(e).map((i) => i.type);
    expect(
      kinds({
        ...base,
        kind: 'transition',
        from: 'healthy',
        to: 'suspect',
        cause: 'silence',
        phi: 2,
        silentMs: 1,
      }),
    ).toEqual(['state']);
    expect(
      kinds({ ...base, kind: 'peer_state_lost', previousEpoch: 'a', epoch: 'b', source: 'hello' }),
    ).toEqual(['peer_state_lost']);
    expect(
      kinds({
        ...base,
        kind: 'diverged',
        local: { count: 1, digest: 'x' },
        remote: { count: 2, digest: 'y' },
        heartbeats: 3,
      } as HealthEvent),
    ).toEqual(['diverged']);
    expect(kinds({ ...base, kind: 'converged', summary: { count: 1, digest: 'x' } } as HealthEvent)).toEqual([
      'converged',
    ]);
    expect(kinds({ ...base, kind: 'epoch_seen', epoch: 'a', source: 'hello' })).toEqual(['other']);
    expect(
      kinds({
        ...base,
        kind: 'zombie_refused',
        epoch: 'a',
        currentEpoch: 'b',
        source: 'hello',
        connectionId: 'c',
        suppressed: 0,
      }),
    ).toEqual(['other']);
    expect(
      kinds({ ...base, kind: 'heartbeat_refused', code: 'X', closeCode: 4400, connectionId: 'c' }),
    ).toEqual(['other']);
  });

  it('reads a persisted resync run record', () => {
    const record: ResyncRunRecord = {
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
    expect(pastRunInput(record)).toMatchObject({
      id: '7',
      status: 'failed',
      outcome: 'failed',
      rounds: 2,
      error: 'SYNC_TIMEOUT',
    });
    expect(resyncInput({ type: 'fork_won', peer: PEER, referenceId: 'r' })).toBeUndefined();
  });
});

describe('peer names and the state-lost tile', () => {
  it('names the peer by its configured name in the rows and the log', () => {
    const { model, at } = setup();
    model.status([
      { peer: PEER, name: 'VASP B', state: 'connected', inflight: 0, openObjects: 0, peerEpoch: null },
    ]);
    for (const input of readHealthEvent({
      kind: 'transition',
      peer: PEER,
      atMs: at(),
      from: 'unknown',
      to: 'healthy',
      cause: 'connected',
      phi: 0,
      silentMs: null,
    })) {
      model.health(input);
    }
    const delta = DashboardDelta.parse(model.takeDelta());
    expect(delta.channels[0]).toMatchObject({ peer: PEER, name: 'VASP B' });
    expect(delta.log[0]!.message).toBe('VASP B: unknown → healthy after connected');
  });

  it('counts the state losses of the last 24 hours, earlier runs included, and forgets older ones', () => {
    const { model, advance, at } = setup();
    advance(2 * 3600_000);
    model.pastStateLosses([
      { peer: PEER, atMs: at() - 3600_000 },
      { peer: PEER, atMs: at() - 3600_000 }, // the same record twice: counted once
    ]);
    for (const input of readHealthEvent({
      kind: 'peer_state_lost',
      peer: PEER,
      atMs: at(),
      previousEpoch: 'a',
      epoch: 'b',
      source: 'hello',
    })) {
      model.health(input);
    }
    expect(DashboardDelta.parse(model.takeDelta()).stateLosses).toHaveLength(2);
    expect(DashboardSnapshot.parse(model.snapshot()).stateLosses.map((l) => l.atMs)).toEqual([
      at() - 3600_000,
      at(),
    ]);
    advance(23 * 3600_000 + 1);
    expect(model.snapshot().stateLosses.map((l) => l.atMs)).toEqual([at() - 23 * 3600_000 - 1]);
    advance(3600_000);
    expect(model.snapshot().stateLosses).toEqual([]);
  });
});
