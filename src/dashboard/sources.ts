/**
 * What the dashboard reads from a node, and the adapters that turn the health monitor's and the
 * resync engine's events into the dashboard's inputs. This file is the one place that knows
 * their shapes: the model and the wire contract (`events.ts`) stay the same when they change.
 */
import type { Observable } from 'rxjs';
import type { HealthState, LogLevel, ResyncStatus } from './events.js';

/** A channel event of the node (`ChannelEvent | BusinessEvent` from `node.ts`), structurally. */
export interface NodeEventLike {
  type: string;
  /** Absent for a node-wide event (an upkeep task), which the dashboard does not show. */
  peer?: string;
  [key: string]: unknown;
}

/** One row of `node.status()`. */
export interface ChannelStatusLike {
  peer: string;
  state: 'disconnected' | 'connected' | 'closed';
  inflight: number;
  openObjects: number;
  peerEpoch: string | null;
  lease?: 'owner' | 'standby';
}

/** One channel's health at one moment (`ChannelHealthSnapshot` of `src/health`), structurally. */
export interface HealthSnapshotLike {
  peer: string;
  state: string;
  sinceMs?: number;
  phi: number | null;
  rttMs: number | null;
  srttMs?: number | null;
  silentMs?: number | null;
  peerEpoch?: string | null;
  diverged?: boolean;
}

/** A channel whose peer is `peer_behind` (`PeerBehindSnapshot` of `src/health`), structurally. */
export interface PeerBehindLike {
  peer: string;
  commands: number;
  sinceMs: number;
}

/** The parts of a `VaspNode` the dashboard reads (it never writes). */
export interface DashboardSource {
  readonly address: string;
  readonly epoch: string;
  readonly url: string;
  /** Channel and business events (hot). */
  readonly events$: Observable<NodeEventLike>;
  /** Current per-channel state (polled while a dashboard client is connected). */
  status(): Promise<readonly ChannelStatusLike[]>;
  /** Health monitor events (hot), when the node runs one. */
  readonly health$?: Observable<unknown>;
  /**
   * The health monitor, when the node runs one: its snapshots are sampled for the RTT / phi
   * series (phi rises between heartbeats, so it is sampled, not only read from events).
   */
  readonly health?: {
    snapshot(): readonly HealthSnapshotLike[];
    /** The channels whose peer is `peer_behind` now (sampled with the snapshots). */
    readonly peerBehind?: { snapshot(): readonly PeerBehindLike[] };
  };
  /** Resync runs and their progress (hot), when the node runs resync. */
  readonly resync$?: Observable<unknown>;
  /** Persisted resync runs, newest first: the runs of earlier node runs, shown on start. */
  resyncRuns?(peer?: string, limit?: number): Promise<readonly unknown[]>;
}

/** A normalised health fact about one channel. */
export type HealthInput =
  | { type: 'state'; peer: string; atMs?: number; state: HealthState; phi?: number | null; cause?: string }
  | {
      type: 'snapshot';
      peer: string;
      atMs?: number;
      state: HealthState;
      sinceMs?: number;
      phi: number | null;
      rttMs: number | null;
      srttMs: number | null;
      silentMs?: number | null;
      diverged?: boolean;
    }
  | { type: 'sample'; peer: string; atMs?: number; rttMs: number | null; phi: number | null }
  | {
      type: 'peer_state_lost';
      peer: string;
      atMs?: number;
      previousEpoch: string | null;
      epoch: string | null;
    }
  | { type: 'diverged'; peer: string; atMs?: number; message?: string }
  | { type: 'converged'; peer: string; atMs?: number }
  | { type: 'peer_behind'; peer: string; atMs?: number; commands: number; cids: string[] }
  | { type: 'peer_behind_cleared'; peer: string; atMs?: number; final: number; abandoned: number }
  | { type: 'other'; peer: string; atMs?: number; kind: string; level: LogLevel; message: string };

/** A normalised update of one resync run (missing fields keep their previous value). */
export interface ResyncInput {
  id: string;
  peer: string;
  atMs?: number;
  startedAtMs?: number;
  finishedAtMs?: number | null;
  reason?: string;
  status?: ResyncStatus;
  outcome?: string | null;
  phase?: string | null;
  done?: number;
  total?: number | null;
  objectsSent?: number;
  objectsReceived?: number;
  bytesSent?: number;
  bytesReceived?: number;
  rounds?: number;
  error?: string | null;
}

type Rec = Record<string, unknown>;

const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'bigint' ? Number(v) : undefined;
const time = (v: unknown): number | undefined => (v instanceof Date ? v.getTime() : num(v));

function pick<T>(r: Rec, keys: readonly string[], read: (v: unknown) => T | undefined): T | undefined {
  for (const k of keys) {
    const v = read(r[k]);
    if (v !== undefined) return v;
  }
  return undefined;
}

const HEALTH_STATES = new Set<string>(['unknown', 'healthy', 'suspect', 'down']);
const asHealthState = (v: unknown): HealthState | undefined =>
  typeof v === 'string' && HEALTH_STATES.has(v) ? (v as HealthState) : undefined;

const atOf = (r: Rec): number | undefined =>
  pick(r, ['atMs', 'at', 'timestampMs', 'timeMs', 'createdAtMs', 'createdAt', 'nowMs'], time);
const kindOf = (r: Rec): string => pick(r, ['type', 'kind', 'event', 'name'], str) ?? 'event';

const short = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 8) : '?');

/**
 * Reads one health monitor event (`HealthEvent` of `src/health/status.ts`: `transition`,
 * `epoch_seen`, `peer_state_lost`, `zombie_refused`, `epoch_reset`, `diverged`, `converged`,
 * `heartbeat_refused`), and, more loosely, any `{ peer, state|to, rttMs?, phi? }` record.
 * Returns every fact it carries; an event with no peer gives nothing.
 */
export function readHealthEvent(raw: unknown): HealthInput[] {
  if (!isRecord(raw)) return [];
  const peer = pick(raw, ['peer', 'address', 'channel'], str);
  if (peer === undefined) return [];
  const kind = pick(raw, ['kind', 'type', 'event', 'name'], str) ?? 'event';
  const at = atOf(raw);
  const base = at === undefined ? { peer } : { peer, atMs: at };
  const rtt = pick(raw, ['rttMs', 'rtt_ms', 'rtt', 'roundTripMs'], num);
  const phi = pick(raw, ['phi', 'suspicion'], num);
  const message = pick(raw, ['message', 'reason', 'detail'], str);

  switch (kind) {
    case 'transition': {
      const state = pick(raw, ['to', 'toState', 'state'], asHealthState);
      if (state === undefined) return [];
      const cause = str(raw['cause']);
      return [
        { type: 'state', ...base, state, ...(phi !== undefined ? { phi } : {}), ...(cause ? { cause } : {}) },
      ];
    }
    case 'peer_state_lost':
      return [
        {
          type: 'peer_state_lost',
          ...base,
          previousEpoch: pick(raw, ['previousEpoch', 'storedEpoch', 'oldEpoch'], str) ?? null,
          epoch: pick(raw, ['epoch', 'newEpoch', 'peerEpoch'], str) ?? null,
        },
      ];
    case 'diverged': {
      const local = isRecord(raw['local']) ? raw['local'] : undefined;
      const remote = isRecord(raw['remote']) ? raw['remote'] : undefined;
      const counts =
        local && remote
          ? `${num(local['count']) ?? '?'} open here, ${num(remote['count']) ?? '?'} there`
          : message;
      return [{ type: 'diverged', ...base, ...(counts ? { message: counts } : {}) }];
    }
    case 'converged':
      return [{ type: 'converged', ...base }];
    case 'peer_behind':
      return [
        {
          type: 'peer_behind',
          ...base,
          commands: num(raw['commands']) ?? 1,
          cids: Array.isArray(raw['cids'])
            ? raw['cids'].filter((c): c is string => typeof c === 'string')
            : [],
        },
      ];
    case 'peer_behind_cleared':
      return [
        {
          type: 'peer_behind_cleared',
          ...base,
          final: num(raw['final']) ?? 0,
          abandoned: num(raw['abandoned']) ?? 0,
        },
      ];
    case 'command_abandoned':
      return [
        {
          type: 'other',
          ...base,
          kind,
          level: 'warn',
          message: `command ${String(raw['cid'])} (${String(raw['referenceId'])}) abandoned by the operator`,
        },
      ];
    case 'epoch_seen':
      return [
        {
          type: 'other',
          ...base,
          kind,
          level: 'info',
          message: `first contact, epoch ${short(raw['epoch'])}`,
        },
      ];
    case 'zombie_refused':
      return [
        {
          type: 'other',
          ...base,
          kind,
          level: 'warn',
          message: `refused a connection with replaced epoch ${short(raw['epoch'])}`,
        },
      ];
    case 'epoch_reset':
      return [
        {
          type: 'other',
          ...base,
          kind,
          level: 'warn',
          message: `operator reinstated epoch ${short(raw['epoch'])} (replacing ${short(raw['previousEpoch'])})`,
        },
      ];
    case 'heartbeat_refused':
      return [
        {
          type: 'other',
          ...base,
          kind,
          level: 'error',
          message: `heartbeat refused: ${String(raw['code'])} (close ${String(raw['closeCode'])})`,
        },
      ];
  }

  // Anything else: a state, a sample, or just a fact to log.
  const out: HealthInput[] = [];
  const state = pick(raw, ['to', 'state', 'status', 'health'], asHealthState) ?? asHealthState(kind);
  if (kind.includes('state_lost')) {
    out.push({
      type: 'peer_state_lost',
      ...base,
      previousEpoch: null,
      epoch: pick(raw, ['epoch'], str) ?? null,
    });
  } else if (state !== undefined) {
    out.push({ type: 'state', ...base, state, ...(phi !== undefined ? { phi } : {}) });
  } else if (rtt === undefined && phi === undefined) {
    out.push({ type: 'other', ...base, kind, level: 'info', message: message ?? kind });
  }
  if (rtt !== undefined || phi !== undefined) {
    out.push({ type: 'sample', ...base, rttMs: rtt ?? null, phi: phi ?? null });
  }
  return out;
}

/** Reads one channel's health snapshot; `undefined` when it is not one. */
export function readHealthSnapshot(raw: HealthSnapshotLike, atMs: number): HealthInput | undefined {
  const state = asHealthState(raw.state);
  if (state === undefined || typeof raw.peer !== 'string') return undefined;
  return {
    type: 'snapshot',
    peer: raw.peer,
    atMs,
    state,
    ...(raw.sinceMs !== undefined ? { sinceMs: raw.sinceMs } : {}),
    phi: num(raw.phi) ?? null,
    rttMs: num(raw.rttMs) ?? null,
    srttMs: num(raw.srttMs) ?? null,
    silentMs: num(raw.silentMs) ?? null,
    ...(raw.diverged !== undefined ? { diverged: raw.diverged } : {}),
  };
}

const RESYNC_STATUS: Record<string, ResyncStatus> = {
  in_sync: 'completed',
  repaired: 'completed',
  partial: 'completed',
  running: 'running',
  started: 'running',
  start: 'running',
  progress: 'running',
  completed: 'completed',
  complete: 'completed',
  done: 'completed',
  finished: 'completed',
  ok: 'completed',
  success: 'completed',
  failed: 'failed',
  failure: 'failed',
  error: 'failed',
  aborted: 'failed',
};

/**
 * Reads one resync event: a run id (`runId`/`id`), the peer, and whichever of status, phase,
 * progress (`done`/`total`) and counters it carries. An event without run id and peer gives
 * `undefined`.
 */
export function readResyncEvent(raw: unknown): ResyncInput | undefined {
  if (!isRecord(raw)) return undefined;
  const nested = isRecord(raw['run']) ? raw['run'] : undefined;
  const r: Rec = nested ? { ...nested, ...raw } : raw;
  const peer = pick(r, ['peer', 'address', 'channel'], str);
  const detail = isRecord(r['detail']) ? r['detail'] : undefined;
  const idRaw = r['runId'] ?? detail?.['runId'] ?? r['id'] ?? nested?.['id'];
  const id = typeof idRaw === 'number' || typeof idRaw === 'bigint' ? String(idRaw) : str(idRaw);
  if (peer === undefined || id === undefined) return undefined;
  const kind = kindOf(r);
  const statusWord = pick(r, ['status', 'outcome', 'phase', 'type', 'kind'], (v) =>
    typeof v === 'string' ? RESYNC_STATUS[v.replace(/^resync[_.-]?/, '')] : undefined,
  );
  const progress = isRecord(r['progress']) ? r['progress'] : {};
  const out: ResyncInput = { id, peer };
  const at = atOf(r);
  if (at !== undefined) out.atMs = at;
  const startedAt = time(r['startedAtMs']) ?? time(r['startedAt']);
  if (startedAt !== undefined) out.startedAtMs = startedAt;
  const finishedAt = time(r['finishedAtMs']) ?? time(r['finishedAt']);
  if (finishedAt !== undefined) out.finishedAtMs = finishedAt;
  const reason = pick(r, ['reason', 'trigger', 'cause'], str);
  if (reason !== undefined) out.reason = reason;
  if (statusWord !== undefined) out.status = statusWord;
  const outcome = str(r['outcome']);
  if (outcome !== undefined) out.outcome = outcome;
  const phase = pick(r, ['phase', 'step', 'stage'], str);
  if (phase !== undefined && RESYNC_STATUS[phase] === undefined) out.phase = phase;
  const done = pick(progress, ['done', 'processed', 'completed'], num) ?? pick(r, ['done', 'processed'], num);
  if (done !== undefined) out.done = done;
  const total = pick(progress, ['total', 'of'], num) ?? pick(r, ['total', 'differences'], num);
  if (total !== undefined) out.total = total;
  for (const key of ['objectsSent', 'objectsReceived', 'bytesSent', 'bytesReceived', 'rounds'] as const) {
    const v = pick(progress, [key], num) ?? pick(r, [key], num);
    if (v !== undefined) out[key] = v;
  }
  const error = pick(
    r,
    ['error', 'errorCode', 'code'],
    (v) => str(v) ?? (isRecord(v) ? (str(v['code']) ?? str(v['message'])) : undefined),
  );
  if (error !== undefined) {
    out.error = error;
    out.status ??= 'failed';
  }
  if (out.status === undefined && kind.includes('start')) out.status = 'running';
  return out;
}
