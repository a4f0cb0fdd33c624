/**
 * When a channel's resync runs besides the operator's request: on a `used_dependencies` answer,
 * on a command the peer keeps answering `wait`, on a health trigger (`peer_state_lost`,
 * `diverged`), on every (re)connect led by the side that dialed; and what follows a run (the
 * channel retransmits, my business reacts to rebuilt objects, a lost fork ends my commands on it).
 */
import type { Observable, Subscription } from 'rxjs';
import type { Channel } from '../channel/channel.js';
import { ParleyError } from '../errors.js';
import { createKeyedThrottle } from '../keyed-throttle.js';
import type { Connection } from '../transport/types.js';
import { background, observed, type ReportFailure } from '../util/background.js';
import type { ChannelSync } from './resync.js';

/** Shortest time between two `command_waiting` runs of one object. */
export const WAITING_RESYNC_INTERVAL_MS = 30_000;

/** What the business layer does after a run (the channel's business driver). */
export interface ResyncFollowUps {
  /** Runs the reactions of the open objects again (rebuilt ones may wait for my next step). */
  recover(): Promise<unknown>;
  /** My branch of an object lost a fork: my business is told. */
  forkLost(fork: {
    referenceId: string;
    keep: string | null;
    droppedCids: string[];
    droppedPending: string[];
  }): Promise<void>;
}

export interface ChannelResyncTriggers {
  peer: string;
  sync: Pick<ChannelSync, 'run' | 'events$'>;
  channel: Pick<Channel, 'commands$' | 'events$' | 'retransmitNow' | 'abandon'>;
  driver: ResyncFollowUps;
  /** The `peer_behind` condition: a run with the peer ended. */
  peerBehind: { runEnded(peer: string): void };
  /** At this many `wait` answers to a command (then every tenth), a resync of its object runs. */
  waitsBeforeResync: number;
  /** Where a follow-up's failure goes (the node's `background_failed`). */
  report: ReportFailure;
}

/** Runs one channel's resyncs on what its commands meet, and follows each run up; until unsubscribed. */
export function watchResyncTriggers(deps: ChannelResyncTriggers): Subscription[] {
  const { peer, sync, channel, driver } = deps;
  /** At most one `command_waiting` run per object and interval, however many commands wait on it. */
  const waitingRuns = createKeyedThrottle({ intervalMs: WAITING_RESYNC_INTERVAL_MS, maxKeys: 10_000 });
  return [
    // Seed scenarios 1 and 2: whoever answers `used_dependencies` may be ahead of the
    // proposer; a resync of that object pushes the missing versions when it is.
    channel.commands$.subscribe((incoming) => {
      if (incoming.status === 'failure' && incoming.code === 'used_dependencies') {
        // A run reports its own end (`resync_finished`).
        observed(sync.run('used_dependencies', [incoming.record.referenceId]));
      }
    }),
    // A command the peer keeps answering `wait` reads a version it lacks (it lost state, or
    // missed my command that wrote it), and while it is in flight the open-object digests are
    // not compared: a resync of that object pushes what the peer lacks. At the third `wait`,
    // then every tenth.
    channel.events$.subscribe((event) => {
      if (event.type !== 'command_waiting') return;
      if (event.waits !== deps.waitsBeforeResync && event.waits % 10 !== 0) return;
      if (waitingRuns.pass(event.referenceId) === undefined) return;
      observed(sync.run('command_waiting', [event.referenceId])); // a run reports its own end
    }),
    sync.events$.subscribe((event) => {
      if (event.type === 'resync_finished') {
        deps.peerBehind.runEnded(peer);
        // A restore run moves closed objects only: nothing to resend, nothing for my business.
        if (event.method === 'restore') return;
        // Commands the peer answered `wait` (it lacked the version) may pass now, and objects
        // rebuilt here may be waiting for my business layer's next step. (After a run that
        // moved nothing, resending them at once would only defeat their backoff.)
        if (event.objectsSent > 0 || event.objectsReceived > 0) channel.retransmitNow();
        if (event.objectsReceived > 0)
          void background(driver.recover(), 'recover_after_resync', deps.report, peer);
      } else if (event.type === 'fork_lost') {
        for (const cid of event.droppedPending) {
          channel.abandon(
            cid,
            new ParleyError('SYNC_FORK_LOST', `${event.referenceId}: my branch lost a fork`),
          );
        }
        void driver.forkLost({
          referenceId: event.referenceId,
          keep: event.keep,
          droppedCids: event.droppedCids,
          droppedPending: event.droppedPending,
        });
      }
    }),
  ];
}

/**
 * Runs the resyncs the health monitor asks for (`peer_state_lost`, `diverged`) on the peer's
 * channel. With `onConnect`, a new epoch is left to the run on connect. A peer that lost its
 * state also gets its closed objects back: this node leads their restore (PROTOCOL.md §7.6).
 */
export function runHealthTriggers(
  triggers$: Observable<{ kind: string; peer: string }>,
  syncs: ReadonlyMap<string, Pick<ChannelSync, 'run'> & Partial<Pick<ChannelSync, 'restore'>>>,
  options: { onConnect: boolean },
): Subscription {
  return triggers$.subscribe((trigger) => {
    if (trigger.kind === 'peer_state_lost') {
      const sync = syncs.get(trigger.peer);
      if (sync?.restore) observed(sync.restore('peer_state_lost')); // a restore reports its own state
    }
    // A new epoch shows at the hello, where the dialer's run on connect already covers it.
    if (trigger.kind === 'peer_state_lost' && options.onConnect) return;
    const target = syncs.get(trigger.peer);
    if (target) observed(target.run(trigger.kind)); // a run reports its own end
  });
}

/** Resync on every (re)connect, led by the side that dialed (PROTOCOL.md §7). */
export function runOnConnect(sync: Pick<ChannelSync, 'run'>, connection: Pick<Connection, 'dialed'>): void {
  if (connection.dialed) observed(sync.run('connect')); // a run reports its own end
}
