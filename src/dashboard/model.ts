/**
 * The dashboard's state: folds node events, status polls, health facts and resync updates into
 * channel rows, RTT / phi series, an event log and resync runs, and hands out a snapshot or the
 * delta since the last one. Pure and synchronous; time comes from the injected clock.
 */

import type { EventsDeliverySnapshot } from '../health/events-delivery.js';
import {
  type ChannelHealth,
  type ChannelView,
  DASHBOARD_CONTRACT_VERSION,
  type DashboardDelta,
  type DashboardSnapshot,
  type Features,
  type HealthState,
  type HealthThresholds,
  type LogEntry,
  type LogLevel,
  type NodeInfo,
  type ResyncRunView,
  type Sample,
  type StateLoss,
} from './events.js';
import { createModelConditions } from './model-conditions.js';
import { foldRestore } from './model-restore.js';
import type { DashboardChannelStatus, DashboardNodeEvent, HealthInput, ResyncInput } from './sources.js';

export interface DashboardModelOptions {
  /** Keep RTT / phi samples this long. @default 180000 */
  sampleWindowMs?: number;
  /** Samples kept per channel at most (older ones are dropped first). @default 400 */
  maxSamplesPerChannel?: number;
  /** Log entries kept. @default 500 */
  logSize?: number;
  /** Resync runs kept (finished ones are dropped first, oldest first). @default 50 */
  resyncRuns?: number;
  /** Reported to clients; the dashboard server sets it. @default 250 */
  deltaIntervalMs?: number;
}

export interface DashboardModelDeps {
  node: Omit<NodeInfo, 'startedAtMs'>;
  /** `payments` defaults to false. */
  features: Omit<Features, 'payments'> & { payments?: boolean };
  thresholds?: HealthThresholds;
  /** @default Date */
  clock?: { now(): number };
}

export interface DashboardModel {
  nodeEvent(event: DashboardNodeEvent): void;
  status(rows: readonly DashboardChannelStatus[]): void;
  health(input: HealthInput): void;
  /** Which channels are `backoffice_unreachable` now (every other one is not). */
  backoffice(rows: readonly { peer: string; sinceMs: number; requests: number; error: string }[]): void;
  /** The node's back-office events while they stopped moving (`events_undeliverable`), else none. */
  eventsDelivery(rows: readonly EventsDeliverySnapshot[]): void;
  /** Which channels are `peer_behind` now (every other one is not). */
  peerBehind(rows: readonly { peer: string; commands: number; sinceMs: number }[]): void;
  /** State losses of earlier node runs (from the health history): counted for 24 hours, not logged. */
  pastStateLosses(losses: readonly StateLoss[]): void;
  resync(input: ResyncInput): void;
  /** Runs of earlier node runs (finished): listed, never logged, never clear a channel's flags. */
  pastResyncRuns(inputs: readonly ResyncInput[]): void;
  /** Everything, as of the last delta taken (take pending changes first). */
  snapshot(): DashboardSnapshot;
  /** The changes since the previous delta, or undefined when nothing changed. */
  takeDelta(): DashboardDelta | undefined;
}

const short = (address: string): string =>
  address.length > 16 ? `${address.slice(0, 8)}…${address.slice(-6)}` : address;

/** The state losses the summary counts: the last 24 hours, at most this many. */
const STATE_LOSS_WINDOW_MS = 24 * 3600_000;
const MAX_STATE_LOSSES = 100;

const HEALTH_LEVEL: Record<HealthState, LogLevel> = {
  unknown: 'info',
  healthy: 'info',
  suspect: 'warn',
  down: 'error',
};

export function createDashboardModel(
  options: DashboardModelOptions,
  deps: DashboardModelDeps,
): DashboardModel {
  const sampleWindowMs = options.sampleWindowMs ?? 180_000;
  const maxSamples = options.maxSamplesPerChannel ?? 400;
  const logSize = options.logSize ?? 500;
  const maxRuns = options.resyncRuns ?? 50;
  const deltaIntervalMs = options.deltaIntervalMs ?? 250;
  const clock = deps.clock ?? Date;
  const node: NodeInfo = { ...deps.node, startedAtMs: clock.now() };
  const thresholds: HealthThresholds = deps.thresholds ?? { suspectPhi: null, downPhi: null };

  const channels = new Map<string, ChannelView>();
  const series = new Map<string, Sample[]>();
  const log: LogEntry[] = [];
  const runs = new Map<string, ResyncRunView>();
  const dirtyChannels = new Set<string>();
  const dirtyRuns = new Set<string>();
  let newSamples: Sample[] = [];
  let newLog: LogEntry[] = [];
  let seq = 0;
  let logId = 0;
  let stateLosses: StateLoss[] = [];
  let newStateLosses: StateLoss[] = [];
  /** The peer's name once a status row gave it, else a short form of its address. */
  const label = (peer: string): string => {
    const name = channels.get(peer)?.name;
    return name !== undefined && name !== peer ? name : short(peer);
  };
  function addStateLoss(loss: StateLoss, fresh: boolean): void {
    stateLosses.push(loss);
    stateLosses.sort((a, b) => a.atMs - b.atMs);
    pruneStateLosses(clock.now());
    if (fresh) newStateLosses.push(loss);
  }
  function pruneStateLosses(nowMs: number): void {
    stateLosses = stateLosses.filter((l) => l.atMs >= nowMs - STATE_LOSS_WINDOW_MS).slice(-MAX_STATE_LOSSES);
  }

  function channel(peer: string): ChannelView {
    let row = channels.get(peer);
    if (!row) {
      row = {
        peer,
        name: peer,
        connection: 'disconnected',
        connectedSinceMs: null,
        peerEpoch: null,
        lease: null,
        openObjects: 0,
        inflight: 0,
        retransmits: 0,
        commandsSent: 0,
        commandsReceived: 0,
        commandFailures: 0,
        lastDisconnect: null,
      };
      channels.set(peer, row);
      dirtyChannels.add(peer);
    }
    return row;
  }

  function touch(peer: string): void {
    dirtyChannels.add(peer);
  }
  const conditions = createModelConditions({ channels, channel, label, append, touch });

  function health(row: ChannelView, atMs: number): ChannelHealth {
    row.health ??= {
      state: 'unknown',
      sinceMs: atMs,
      rttMs: null,
      srttMs: null,
      phi: null,
      lastHeartbeatAtMs: null,
      peerStateLost: false,
      diverged: false,
    };
    return row.health;
  }

  function append(peer: string | null, kind: string, level: LogLevel, message: string, atMs: number): void {
    const entry: LogEntry = { id: ++logId, atMs, peer, kind, level, message };
    log.push(entry);
    if (log.length > logSize) log.splice(0, log.length - logSize);
    newLog.push(entry);
    if (newLog.length > logSize) newLog.splice(0, newLog.length - logSize);
  }

  function addSample(sample: Sample): void {
    let list = series.get(sample.peer);
    if (!list) {
      list = [];
      series.set(sample.peer, list);
    }
    list.push(sample);
    prune(list, clock.now());
    newSamples.push(sample);
    // Bounded even if nobody takes deltas for a while.
    if (newSamples.length > maxSamples * 8) newSamples.splice(0, newSamples.length - maxSamples * 8);
  }

  function prune(list: Sample[], nowMs: number): void {
    let drop = Math.max(0, list.length - maxSamples);
    while (drop < list.length && list[drop]!.atMs < nowMs - sampleWindowMs) drop++;
    if (drop > 0) list.splice(0, drop);
  }

  /** When each channel's last state event arrived (snapshots defer to events). */
  const stateEventAt = new Map<string, number>();
  /** Snapshots are sampled; a state event is never older than the snapshot that follows it. */
  const SNAPSHOT_DEFERS_MS = 2000;

  function setState(
    row: ChannelView,
    h: ChannelHealth,
    state: HealthState,
    atMs: number,
    cause?: string,
  ): void {
    if (h.state === state) return;
    const from = h.state;
    h.state = state;
    h.sinceMs = atMs;
    const phi = h.phi === null || state === 'healthy' ? '' : ` (phi ${h.phi.toFixed(1)})`;
    const why = cause ? ` after ${cause}` : '';
    append(row.peer, state, HEALTH_LEVEL[state], `${label(row.peer)}: ${from} → ${state}${why}${phi}`, atMs);
  }

  return {
    nodeEvent(event) {
      const at = clock.now();
      const row = channel(event.peer);
      const peer = label(event.peer);
      switch (event.type) {
        case 'connected':
          row.connection = 'connected';
          row.connectedSinceMs = at;
          append(
            event.peer,
            'connected',
            'info',
            `channel to ${peer} connected (${event.dialed ? 'dialed' : 'accepted'})`,
            at,
          );
          break;
        case 'disconnected': {
          const code = event.closeCode;
          const reason = event.reason;
          row.connection = row.connection === 'closed' ? 'closed' : 'disconnected';
          row.connectedSinceMs = null;
          row.lastDisconnect = { code, reason, atMs: at };
          const expected = code === 1000 || code === 4409;
          append(
            event.peer,
            'disconnected',
            expected ? 'info' : 'warn',
            `channel to ${peer} disconnected (${code}${reason ? ` ${reason}` : ''})`,
            at,
          );
          break;
        }
        case 'retransmit':
          row.retransmits++;
          break;
        case 'command_final':
          row.commandsSent++;
          if (event.status === 'failure') {
            row.commandFailures++;
            append(event.peer, 'command_failed', 'warn', `my command failed: ${event.code}`, at);
          }
          break;
        case 'command_received':
          row.commandsReceived++;
          if (event.status === 'failure') {
            row.commandFailures++;
            append(event.peer, 'command_refused', 'warn', `refused a command: ${event.code}`, at);
          }
          break;
        case 'restore_progress':
        case 'restore_finished':
          foldRestore({ channel, label, append }, event, at);
          break;
        default: {
          // Events that only make a log line (and count a refused frame).
          if (event.type === 'frame_refused') row.commandFailures++;
          const line = logLine(event, peer);
          if (line === undefined) return; // routine: counted elsewhere, or not shown
          append(event.peer, line.kind, line.level, line.message, at);
        }
      }
      touch(event.peer);
    },

    status(rows) {
      for (const s of rows) {
        const row = channel(s.peer);
        const key = () =>
          `${row.name}|${row.connection}|${row.inflight}|${row.openObjects}|${row.peerEpoch}|${row.lease}`;
        const before = key();
        if (s.state !== row.connection) {
          row.connection = s.state;
          if (s.state !== 'connected') row.connectedSinceMs = null;
          else row.connectedSinceMs ??= clock.now();
        }
        row.name = s.name ?? s.peer;
        row.inflight = s.inflight;
        row.openObjects = s.openObjects;
        row.peerEpoch = s.peerEpoch;
        const wasOwner = row.lease === 'owner';
        row.lease = s.lease ?? null;
        // A standby does not watch the channel: the health it showed as owner is stale now.
        const staleHealth = wasOwner && row.lease === 'standby' && row.health !== undefined;
        if (staleHealth) delete row.health;
        if (staleHealth || key() !== before) touch(s.peer);
      }
    },

    health(input) {
      const at = input.atMs ?? clock.now();
      if (conditions.handles(input)) {
        conditions.event(input, at);
        return;
      }
      const row = channel(input.peer);
      const h = health(row, at);
      const peer = label(input.peer);
      switch (input.type) {
        case 'state':
          if (input.phi !== undefined) h.phi = input.phi;
          stateEventAt.set(input.peer, at);
          setState(row, h, input.state, at, input.cause);
          if (input.state === 'down' || input.state === 'unknown') {
            h.rttMs = null;
            h.srttMs = null;
          }
          break;
        case 'snapshot': {
          const lastEvent = stateEventAt.get(input.peer);
          if (lastEvent === undefined || at - lastEvent > SNAPSHOT_DEFERS_MS) {
            setState(row, h, input.state, input.sinceMs ?? at);
          }
          // A silent peer's last RTT says nothing about now: no RTT while it is not live.
          const live = input.state === 'healthy' || input.state === 'suspect';
          h.phi = input.phi;
          h.rttMs = live ? input.rttMs : null;
          h.srttMs = live ? input.srttMs : null;
          if (input.silentMs != null) h.lastHeartbeatAtMs = at - input.silentMs;
          if (input.diverged !== undefined) h.diverged = input.diverged;
          addSample({ peer: input.peer, atMs: at, rttMs: live ? input.rttMs : null, phi: input.phi });
          break;
        }
        case 'sample':
          if (input.rttMs !== null) {
            h.rttMs = input.rttMs;
            h.lastHeartbeatAtMs = at;
          }
          if (input.phi !== null) h.phi = input.phi;
          addSample({ peer: input.peer, atMs: at, rttMs: input.rttMs, phi: input.phi });
          break;
        case 'peer_state_lost': {
          h.peerStateLost = true;
          addStateLoss({ peer: input.peer, atMs: at }, true);
          if (input.epoch !== null) row.peerEpoch = input.epoch;
          const epochs = `${input.previousEpoch?.slice(0, 8) ?? '?'} → ${input.epoch?.slice(0, 8) ?? '?'}`;
          append(input.peer, 'peer_state_lost', 'error', `${peer} lost its state (epoch ${epochs})`, at);
          break;
        }
        case 'diverged':
          h.diverged = true;
          append(
            input.peer,
            'diverged',
            'warn',
            `${peer}: open objects diverged${input.message ? `: ${input.message}` : ''}`,
            at,
          );
          break;
        case 'converged':
          if (h.diverged) append(input.peer, 'converged', 'info', `${peer}: open objects agree again`, at);
          h.diverged = false;
          break;
        case 'other':
          append(input.peer, input.kind, input.level, `${peer}: ${input.message}`, at);
          break;
      }
      touch(input.peer);
    },

    backoffice: (rows) => conditions.backoffice(rows),
    eventsDelivery: (rows) => conditions.eventsDelivery(rows),
    peerBehind: (rows) => conditions.peerBehind(rows),

    resync(input) {
      const at = input.atMs ?? clock.now();
      let run = runs.get(input.id);
      const isNew = run === undefined;
      if (!run) {
        run = {
          id: input.id,
          peer: input.peer,
          reason: input.reason ?? 'unknown',
          status: 'running',
          outcome: null,
          phase: null,
          startedAtMs: input.startedAtMs ?? at,
          finishedAtMs: null,
          done: 0,
          total: null,
          objectsSent: 0,
          objectsReceived: 0,
          bytesSent: 0,
          bytesReceived: 0,
          rounds: 0,
          error: null,
        };
        runs.set(input.id, run);
      }
      const wasRunning = run.status === 'running';
      if (input.reason !== undefined) run.reason = input.reason;
      if (input.phase !== undefined) run.phase = input.phase;
      if (input.done !== undefined) run.done = input.done;
      if (input.total !== undefined) run.total = input.total;
      if (input.objectsSent !== undefined) run.objectsSent = input.objectsSent;
      if (input.objectsReceived !== undefined) run.objectsReceived = input.objectsReceived;
      if (input.bytesSent !== undefined) run.bytesSent = input.bytesSent;
      if (input.bytesReceived !== undefined) run.bytesReceived = input.bytesReceived;
      if (input.rounds !== undefined) run.rounds = input.rounds;
      if (input.error !== undefined) run.error = input.error;
      if (input.outcome !== undefined) run.outcome = input.outcome;
      if (input.status !== undefined) run.status = input.status;
      const peer = label(input.peer);
      if (isNew)
        append(input.peer, 'resync_started', 'info', `resync with ${peer} started (${run.reason})`, at);
      if (wasRunning && run.status !== 'running') {
        run.finishedAtMs = input.finishedAtMs ?? at;
        if (run.status === 'completed') {
          if (run.total !== null) run.done = Math.max(run.done, run.total);
          const moved = `sent ${run.objectsSent}, received ${run.objectsReceived} objects in ${run.rounds} rounds`;
          const how = run.outcome ? ` (${run.outcome})` : '';
          append(input.peer, 'resync_completed', 'info', `resync with ${peer} completed${how}: ${moved}`, at);
          const row = channel(input.peer);
          if (row.health) {
            row.health.peerStateLost = false;
            row.health.diverged = false;
          }
        } else {
          append(
            input.peer,
            'resync_failed',
            'error',
            `resync with ${peer} failed: ${run.error ?? 'unknown'}`,
            at,
          );
        }
      }
      if (runs.size > maxRuns) {
        const victim =
          [...runs.values()].find((r) => r.status !== 'running' && r.id !== input.id) ??
          runs.values().next().value;
        if (victim) {
          runs.delete(victim.id);
          dirtyRuns.delete(victim.id);
        }
      }
      channel(input.peer).resync = { ...run };
      dirtyRuns.add(run.id);
      touch(input.peer);
    },

    pastResyncRuns(inputs) {
      const past = inputs
        .filter((i) => !runs.has(i.id) && i.status !== undefined && i.status !== 'running')
        .sort((a, b) => (a.startedAtMs ?? 0) - (b.startedAtMs ?? 0))
        .slice(-maxRuns);
      // Oldest first, and ahead of this run's own runs: they are the oldest entries.
      const live = [...runs.entries()];
      runs.clear();
      for (const input of past) {
        const started = input.startedAtMs ?? 0;
        const run: ResyncRunView = {
          id: input.id,
          peer: input.peer,
          reason: input.reason ?? 'unknown',
          status: input.status ?? 'completed',
          outcome: input.outcome ?? null,
          phase: null,
          startedAtMs: started,
          finishedAtMs: input.finishedAtMs ?? started,
          done: input.done ?? input.total ?? 0,
          total: input.total ?? null,
          objectsSent: input.objectsSent ?? 0,
          objectsReceived: input.objectsReceived ?? 0,
          bytesSent: input.bytesSent ?? 0,
          bytesReceived: input.bytesReceived ?? 0,
          rounds: input.rounds ?? 0,
          error: input.error ?? null,
        };
        runs.set(run.id, run);
        dirtyRuns.add(run.id);
        const row = channel(input.peer);
        if (!row.resync || row.resync.startedAtMs < started) {
          row.resync = { ...run };
          touch(input.peer);
        }
      }
      for (const [id, run] of live) runs.set(id, run);
      while (runs.size > maxRuns) {
        const oldest = runs.keys().next().value;
        if (oldest === undefined) break;
        runs.delete(oldest);
        dirtyRuns.delete(oldest);
      }
    },

    pastStateLosses(losses) {
      const known = new Set(stateLosses.map((l) => `${l.peer}|${l.atMs}`));
      for (const loss of losses) {
        const key = `${loss.peer}|${loss.atMs}`;
        if (known.has(key)) continue;
        known.add(key);
        addStateLoss(loss, true);
      }
    },

    snapshot() {
      const now = clock.now();
      pruneStateLosses(now);
      const samples: Sample[] = [];
      for (const list of series.values()) {
        prune(list, now);
        samples.push(...list);
      }
      samples.sort((a, b) => a.atMs - b.atMs);
      return {
        version: DASHBOARD_CONTRACT_VERSION,
        seq,
        atMs: now,
        node: { ...node },
        features: { ...deps.features, payments: deps.features.payments ?? false },
        thresholds: { ...thresholds },
        channels: [...channels.values()].map(copyRow),
        samples,
        log: [...log],
        resyncRuns: [...runs.values()].map((r) => ({ ...r })),
        stateLosses: stateLosses.map((l) => ({ ...l })),
        conditions: conditions.node(),
        limits: { sampleWindowMs, logSize, resyncRuns: maxRuns, deltaIntervalMs },
      };
    },

    takeDelta() {
      const nodeChange = conditions.takeNodeChange();
      if (
        dirtyChannels.size === 0 &&
        newSamples.length === 0 &&
        newLog.length === 0 &&
        dirtyRuns.size === 0 &&
        newStateLosses.length === 0 &&
        nodeChange === undefined
      ) {
        return undefined;
      }
      const delta: DashboardDelta = {
        seq: ++seq,
        atMs: clock.now(),
        channels: [...dirtyChannels].flatMap((peer) => {
          const row = channels.get(peer);
          return row ? [copyRow(row)] : [];
        }),
        samples: newSamples,
        log: newLog,
        resyncRuns: [...dirtyRuns].flatMap((id) => {
          const run = runs.get(id);
          return run ? [{ ...run }] : [];
        }),
        stateLosses: newStateLosses,
        ...(nodeChange ? { conditions: nodeChange } : {}),
      };
      newStateLosses = [];
      dirtyChannels.clear();
      dirtyRuns.clear();
      newSamples = [];
      newLog = [];
      return delta;
    },
  };
}

function copyRow(row: ChannelView): ChannelView {
  const { health, resync, restore, lastDisconnect, peerBehind, backoffice, ...rest } = row;
  return {
    ...rest,
    lastDisconnect: lastDisconnect ? { ...lastDisconnect } : null,
    ...(peerBehind ? { peerBehind: { ...peerBehind } } : {}),
    ...(backoffice ? { backoffice: { ...backoffice } } : {}),
    ...(health ? { health: { ...health } } : {}),
    ...(resync ? { resync: { ...resync } } : {}),
    ...(restore ? { restore: { ...restore } } : {}),
  };
}

/** The log line of a node event that only makes one, or undefined for a routine event. */
function logLine(
  event: DashboardNodeEvent,
  peer: string,
): { kind: string; level: LogLevel; message: string } | undefined {
  const line = (level: LogLevel, message: string) => ({ kind: event.type, level, message });
  switch (event.type) {
    case 'fork':
      return line('warn', `fork on command ${event.cid}`);
    case 'frame_refused':
      return line('error', `frame refused: ${event.code}`);
    case 'business_error':
      return line('error', `business error: ${event.message}`);
    case 'command_failed':
      return line('warn', `business: command failed: ${event.code}`);
    case 'history_rejected':
      return line('error', `resync: history of ${event.referenceId} refused: ${event.code}`);
    case 'fork_lost':
      return line('warn', `resync: my branch of ${event.referenceId} lost to ${peer}'s`);
    case 'fork_won':
      return line('info', `resync: my branch of ${event.referenceId} won`);
    case 'lease_acquired':
      return line('info', `this replica serves the channel to ${peer} now`);
    case 'lease_lost':
      return line('warn', `this replica no longer serves the channel to ${peer} (${event.reason})`);
    default:
      // Successful reactions, rebuilt objects (counted by the resync run) and other routine events.
      return undefined;
  }
}
