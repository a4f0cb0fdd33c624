/**
 * The closed-object restore of each channel (PROTOCOL.md §7.6) as the dashboard's model keeps
 * it: the row's `restore` view from the node's `restore_progress` / `restore_finished` events,
 * and a log line when a restore starts, waits, goes on again or finishes (never one per batch).
 * Part of the model (`model.ts`), which hands in its rows and its log.
 */
import type { ChannelView, LogLevel, RestoreView } from './events.js';
import type { DashboardNodeEvent } from './sources.js';

export type RestoreNodeEvent = Extract<DashboardNodeEvent, { type: 'restore_progress' | 'restore_finished' }>;

/** What the restore view needs of the model. */
export interface RestoreHost {
  channel(peer: string): ChannelView;
  label(peer: string): string;
  append(peer: string | null, kind: string, level: LogLevel, message: string, atMs: number): void;
}

export function isRestoreEvent(event: DashboardNodeEvent): event is RestoreNodeEvent {
  return event.type === 'restore_progress' || event.type === 'restore_finished';
}

const count = (n: number): string => n.toLocaleString('en-US');

/** Folds one restore event into the channel's row (`at`: the model's time, for the log). */
export function foldRestore(host: RestoreHost, event: RestoreNodeEvent, at: number): void {
  const row = host.channel(event.peer);
  const before = row.restore;
  const finished = event.state === 'finished' || event.type === 'restore_finished';
  const next: RestoreView = {
    state: finished ? 'finished' : event.state,
    role: event.role,
    reason: event.reason,
    moved: event.moved,
    compared: event.compared,
    startedAtMs: event.startedAtMs,
    atMs: event.atMs,
    error: event.state === 'waiting' ? (event.error ?? null) : null,
    finishedAtMs: finished ? event.atMs : null,
  };
  row.restore = next;
  const fresh =
    before === undefined ||
    before.startedAtMs !== next.startedAtMs ||
    before.role !== next.role ||
    (before.state === 'finished' && next.state !== 'finished');
  const line = logLine(host.label(event.peer), fresh ? undefined : before, next);
  if (line) host.append(event.peer, line.kind, line.level, line.message, at);
}

/** The log line of a restore's change of state (`before` undefined: a new restore), if any. */
function logLine(
  peer: string,
  before: RestoreView | undefined,
  next: RestoreView,
): { kind: string; level: LogLevel; message: string } | undefined {
  const who = next.role === 'leader' ? 'led by this node' : `led by ${peer}`;
  const moved = `${count(next.moved)} restored${next.role === 'leader' ? `, ${count(next.compared)} compared` : ''}`;
  if (next.state === 'finished') {
    if (before?.state === 'finished') return undefined;
    const took = Math.max(0, next.atMs - next.startedAtMs);
    return {
      kind: 'restore_finished',
      level: 'info',
      message: `${peer}: closed-object restore finished (${who}): ${moved} in ${Math.round(took / 1000)} s`,
    };
  }
  if (next.state === 'waiting') {
    if (before?.state === 'waiting') return undefined;
    return {
      kind: 'restore_waiting',
      level: 'warn',
      message: `${peer}: closed-object restore waiting (${who}): ${next.error ?? 'its run stopped'}; it goes on at the next connection (${moved} so far)`,
    };
  }
  if (before === undefined) {
    return {
      kind: 'restore_started',
      level: 'info',
      message: `${peer}: restoring closed objects (${who}, ${next.reason})`,
    };
  }
  if (before.state === 'waiting') {
    return {
      kind: 'restore_resumed',
      level: 'info',
      message: `${peer}: closed-object restore goes on (${who}, ${moved} so far)`,
    };
  }
  return undefined; // a batch: the row shows it
}
