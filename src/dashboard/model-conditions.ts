/**
 * The conditions the dashboard's model folds in: per channel `peer_behind` and
 * `backoffice_unreachable` (from their events and from sampled snapshots), and the node's own
 * conditions (`events_undeliverable`). Part of the model (`model.ts`), which hands in its rows,
 * its log and its change tracking.
 */
import type { EventsDeliverySnapshot } from '../health/events-delivery.js';
import type { ChannelView, LogLevel, NodeCondition } from './events.js';
import type { HealthInput } from './sources.js';

/** What the conditions need of the model. */
export interface ConditionsHost {
  readonly channels: ReadonlyMap<string, ChannelView>;
  channel(peer: string): ChannelView;
  label(peer: string): string;
  append(peer: string | null, kind: string, level: LogLevel, message: string, atMs: number): void;
  touch(peer: string): void;
}

export type ConditionEvent = Extract<
  HealthInput,
  { type: 'peer_behind' | 'peer_behind_cleared' | 'backoffice_unreachable' | 'backoffice_reachable' }
>;

export interface ModelConditions {
  /** Whether `input` is one of these conditions' events. */
  handles(input: HealthInput): input is ConditionEvent;
  /** The row's condition and a log line (no health row needed: LIP-1 HTTP has none). */
  event(input: ConditionEvent, atMs: number): void;
  backoffice(rows: readonly { peer: string; sinceMs: number; requests: number; error: string }[]): void;
  peerBehind(rows: readonly { peer: string; commands: number; sinceMs: number }[]): void;
  eventsDelivery(rows: readonly EventsDeliverySnapshot[]): void;
  /** The node's conditions now. */
  node(): NodeCondition[];
  /** The node's conditions if they changed since the last call, else undefined. */
  takeNodeChange(): NodeCondition[] | undefined;
}

const EVENT_TYPES: ReadonlySet<string> = new Set([
  'peer_behind',
  'peer_behind_cleared',
  'backoffice_unreachable',
  'backoffice_reachable',
]);

export function createModelConditions(host: ConditionsHost): ModelConditions {
  let conditions: NodeCondition[] = [];
  let changed = false;

  /** Sets or clears a per-channel condition for exactly the peers of `rows`. */
  function sampled<K extends 'peerBehind' | 'backoffice', R extends { peer: string }>(
    key: K,
    rows: readonly R[],
    next: (row: ChannelView, r: R) => NonNullable<ChannelView[K]> | undefined,
  ): void {
    const now = new Set(rows.map((r) => r.peer));
    for (const r of rows) {
      const row = host.channel(r.peer);
      const value = next(row, r);
      if (value === undefined) continue; // unchanged
      row[key] = value;
      host.touch(r.peer);
    }
    for (const [peer, row] of host.channels) {
      if (row[key] === undefined || now.has(peer)) continue;
      delete row[key];
      host.touch(peer);
    }
  }

  return {
    handles: (input): input is ConditionEvent => EVENT_TYPES.has(input.type),

    event(input, at) {
      const row = host.channel(input.peer);
      const peer = host.label(input.peer);
      switch (input.type) {
        case 'peer_behind': {
          row.peerBehind = { commands: input.commands, sinceMs: at };
          const cids = input.cids.join(', ');
          const message = `${peer} is behind: ${input.commands} command(s) answered \`wait\` with no progress (${cids}); \`parley command abandon <cid>\` ends one`;
          host.append(input.peer, 'peer_behind', 'warn', message, at);
          break;
        }
        case 'peer_behind_cleared': {
          delete row.peerBehind;
          const message = `${peer} is no longer behind (${input.final} final, ${input.abandoned} abandoned)`;
          host.append(input.peer, 'peer_behind_cleared', 'info', message, at);
          break;
        }
        case 'backoffice_unreachable': {
          row.backoffice = { sinceMs: at, requests: input.failures, error: input.error };
          const message = `${peer}: the back office does not answer (${input.failures} failures: ${input.error}); payments wait`;
          host.append(input.peer, input.type, 'warn', message, at);
          break;
        }
        case 'backoffice_reachable': {
          delete row.backoffice;
          const message = `${peer}: the back office answers again (after ${Math.round(input.unreachableMs / 1000)} s)`;
          host.append(input.peer, input.type, 'info', message, at);
          break;
        }
      }
      host.touch(input.peer);
    },

    backoffice(rows) {
      sampled('backoffice', rows, (row, r) => {
        const b = row.backoffice;
        // The event's time stands (the tracker's clock may be another's); counts and error follow.
        if (b?.requests === r.requests && b.error === r.error) return undefined;
        return { sinceMs: b?.sinceMs ?? r.sinceMs, requests: r.requests, error: r.error };
      });
    },

    peerBehind(rows) {
      sampled('peerBehind', rows, (row, r) =>
        row.peerBehind?.commands === r.commands && row.peerBehind.sinceMs === r.sinceMs
          ? undefined
          : { commands: r.commands, sinceMs: r.sinceMs },
      );
    },

    eventsDelivery(rows) {
      const next: NodeCondition[] = rows.map((r) => ({
        kind: 'events_undeliverable',
        alert: 'ParleyEventsUndeliverable',
        severity: 'warning',
        sinceMs: r.sinceMs,
        message: `The back-office events stopped: their receiver refused ${r.failures} deliveries in a row (last: ${r.error}); every later event waits behind ${r.eventId} (${host.label(r.peer)}).`,
      }));
      if (JSON.stringify(next) === JSON.stringify(conditions)) return;
      conditions = next;
      changed = true;
    },

    node: () => conditions.map((c) => ({ ...c })),

    takeNodeChange() {
      if (!changed) return undefined;
      changed = false;
      return conditions.map((c) => ({ ...c }));
    },
  };
}
