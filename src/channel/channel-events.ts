/** The values a channel streams and gives back (re-exported by `channel.ts`). */
import type { Observable } from 'rxjs';
import { channelAddress } from '../protocol/address.js';
import type { CommandRequestObject, PaymentStatus } from '../protocol/lip1.js';
import type { RequestOutcome, ResponseOutcome } from './channel-core.js';

/** An incoming command, emitted after it is durable. */
export type IncomingCommand = Extract<RequestOutcome, { kind: 'committed' }>;

/** The final outcome of a command this node sent. */
export type CommandOutcome = Extract<ResponseOutcome, { kind: 'final' }>;

/** Connection state of a channel (the health module refines it with heartbeats). */
export type ChannelState = 'disconnected' | 'connected' | 'closed';

/** Events of a channel, for logs, metrics and the dashboard. */
export type ChannelEvent =
  | { type: 'connected'; peer: string; dialed: boolean }
  | { type: 'disconnected'; peer: string; closeCode: number; reason: string }
  | { type: 'retransmit'; peer: string; cid: string; attempt: number }
  /**
   * A command of mine got its final response. `referenceId` names the payment; `myStatus` and
   * `theirStatus` are the two sides' statuses the command wrote (null for a failure, which
   * writes nothing, or when a side is not recognised).
   */
  | {
      type: 'command_final';
      peer: string;
      cid: string;
      referenceId: string;
      status: 'success' | 'failure';
      code: string | null;
      myStatus: PaymentStatus | null;
      theirStatus: PaymentStatus | null;
    }
  | {
      type: 'command_received';
      peer: string;
      cid: string;
      status: 'success' | 'failure';
      code: string | null;
    }
  | { type: 'fork'; peer: string; cid: string }
  /**
   * The peer answered `wait` to a command of mine (it lacks the version the command reads, or
   * holds it for another command): resent after a backoff. `waits` counts them for this command.
   */
  | { type: 'command_waiting'; peer: string; cid: string; referenceId: string; waits: number }
  /**
   * A command of mine stopped being tracked without a final response: the operator abandoned it
   * (`COMMAND_ABANDONED`), or resync dropped it (`SYNC_FORK_LOST`). It is never resent.
   */
  | { type: 'command_dropped'; peer: string; cid: string; code: string }
  /** A command of mine is durable in the outbox and goes out now or at the next connect. */
  | { type: 'command_queued'; peer: string; cid: string; referenceId: string }
  /** A frame that was dropped (`frameType`: a kind of frame this version does not know). */
  | {
      type: 'frame_refused';
      peer: string;
      code: string;
      frameType?: string;
      /** In the node's events: refused for this key since its last report and not reported one by one. */
      suppressed?: number;
    };

/** A command of mine that is durable in the outbox: it survives a crash and goes out until final. */
export interface QueuedCommand {
  cid: string;
  referenceId: string;
}

/** What {@link Channel.submit} gives back: the durable acknowledgement and the final outcome, apart. */
export interface SubmittedCommand {
  referenceId: string;
  /**
   * Resolves once the command is durable in the outbox (the moment to acknowledge it to anyone:
   * from here a crash does not lose it, and it completes whether or not the peer is reachable).
   * Rejects with the {@link ParleyError} that kept it from being stored (nothing was stored):
   * CHANNEL_DEPENDENCY_UNAVAILABLE, CHANNEL_INVALID_COMMAND, STORE_LEASE_LOST, STORE_* store
   * failures. Never rejects once the command is stored. An unobserved rejection is not reported
   * as unhandled (callers that only want the outcome see the same error there).
   */
  queued: Promise<QueuedCommand>;
  /**
   * The final outcome (one value, then complete; replayed to late subscribers). Errors with the
   * same error as `queued` when the command could not be stored, or, after it was stored, with
   * CHANNEL_CLOSED / STORE_LEASE_LOST when this channel stops serving before the final response
   * (the command stays in the outbox and completes when the channel is served again), or with
   * SYNC_FORK_LOST when resync dropped it (its object's other branch won a fork).
   */
  outcome$: Observable<CommandOutcome>;
}

/**
 * The statuses a successful command of mine wrote, seen from my side: the side whose account is
 * on the peer's channel is theirs, the other one mine. Null when nothing was written.
 */
export function writtenStatuses(
  peer: string,
  request: CommandRequestObject,
  status: 'success' | 'failure',
): { myStatus: PaymentStatus | null; theirStatus: PaymentStatus | null } {
  if (status !== 'success') return { myStatus: null, theirStatus: null };
  const { sender, receiver } = request.command.payment;
  const onPeer = (address: string): boolean | undefined => {
    try {
      return channelAddress(address) === peer;
    } catch {
      return undefined; // not an address: which side is whose is unknown
    }
  };
  const senderThere = onPeer(sender.address);
  const receiverThere = onPeer(receiver.address);
  if (senderThere === true && receiverThere === false)
    return { myStatus: receiver.status.status, theirStatus: sender.status.status };
  if (senderThere === false && receiverThere === true)
    return { myStatus: sender.status.status, theirStatus: receiver.status.status };
  return { myStatus: null, theirStatus: null };
}
