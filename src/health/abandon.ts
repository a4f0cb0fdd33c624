/**
 * The operator's way out of a command stuck at a peer that cannot progress (`peer_behind`):
 * `parley command abandon <cid>` ends a command of mine locally, with `COMMAND_ABANDONED`.
 *
 * Durable before it is reported: the outbox row goes and the `command_abandoned` record joins
 * the health history in one transaction (src/store/abandon-repository.ts); only then is the
 * command forgotten in memory (never resent, here or after a restart), and whoever waits on its
 * outcome gets `COMMAND_ABANDONED`. The signed log is not touched: the peer may hold the
 * command or not, and a late response to it is refused as unknown.
 */

import { ParleyError } from '../errors.js';
import type { AbandonStore } from '../store/abandon-repository.js';
import type { ParleyStore } from '../store/types.js';
import type { AbandonChannel, AbandonCore } from './channel-ports.js';
import { toHealthRecord } from './health-monitor.js';
import type { HealthEvent } from './status.js';

/** What an abandonment ended. */
export interface AbandonedCommand {
  peer: string;
  cid: string;
  referenceId: string;
  /** When it was abandoned (ms since the Unix epoch). */
  atMs: number;
}

export interface AbandonDeps {
  /** Every channel of the node, with its core. */
  channels(): Iterable<{ channel: AbandonChannel; core: AbandonCore }>;
  store: Pick<ParleyStore, 'findCommand' | 'outbox'>;
  abandons: AbandonStore;
  /** Streams the (already persisted) `command_abandoned` event: the health monitor's `announce`. */
  announce(event: HealthEvent): void;
  /** @default Date.now */
  now?: () => number;
}

/**
 * Abandons the command of mine with this cid, on whichever channel holds it.
 * @throws COMMAND_UNKNOWN (no command of mine has it); COMMAND_ALREADY_FINAL (it has its final
 *   outcome, or was abandoned before); STORE_LEASE_LOST (another replica serves its channel);
 *   STORE_UNAVAILABLE
 */
export async function abandonCommand(deps: AbandonDeps, cid: string): Promise<AbandonedCommand> {
  const now = deps.now ?? Date.now;
  const all = [...deps.channels()];
  const held = all.find(({ core }) => core.isPending(cid));
  if (!held) {
    for (const { channel } of all) {
      const logged = await deps.store.findCommand(channel.peer, cid);
      if (logged?.direction === 'outbound') {
        throw new ParleyError(
          'COMMAND_ALREADY_FINAL',
          `${cid} is final (${logged.status}) in the signed log`,
        );
      }
      const at = await deps.abandons.abandonedAt(channel.peer, cid);
      if (at !== undefined) {
        throw new ParleyError(
          'COMMAND_ALREADY_FINAL',
          `${cid} was abandoned at ${new Date(at).toISOString()}`,
        );
      }
    }
    throw new ParleyError('COMMAND_UNKNOWN', `no command of this node has cid ${cid}`);
  }
  const { channel, core } = held;
  const peer = channel.peer;
  if (channel.suspended) {
    throw new ParleyError('STORE_LEASE_LOST', `another replica serves the channel to ${peer} now`);
  }
  // With the receiving order paused: a response to it is applied before (then it is final) or
  // refused after (then it is abandoned), never half of each.
  const event = await core.exclusive(async () => {
    const row = core.isPending(cid) ? (await deps.store.outbox(peer)).find((r) => r.cid === cid) : undefined;
    if (!row) throw new ParleyError('COMMAND_ALREADY_FINAL', `${cid} got its final outcome meanwhile`);
    const abandoned: Extract<HealthEvent, { kind: 'command_abandoned' }> = {
      kind: 'command_abandoned',
      peer,
      atMs: now(),
      cid,
      referenceId: row.referenceId,
      readVersion: row.readVersion,
      writeVersion: row.writeVersion,
      code: 'COMMAND_ABANDONED',
      requestJws: row.requestJws,
    };
    await deps.abandons.abandon(peer, cid, toHealthRecord(abandoned));
    core.dropPending(cid);
    return abandoned;
  });
  channel.abandon(
    cid,
    new ParleyError(
      'COMMAND_ABANDONED',
      `the operator abandoned ${cid} (${event.referenceId}); it is never resent`,
    ),
  );
  deps.announce(event);
  return { peer, cid, referenceId: event.referenceId, atMs: event.atMs };
}
