/**
 * Where a channel's control frames go (`ChannelDeps.onControlFrame`): the frames that are not
 * LIP-1 commands, by kind — resync frames to the channel's resync, heartbeats to its health,
 * and a kind this version does not know to the refusal reports (dropped, the connection kept).
 */
import { isSyncFrameType } from '../protocol/sync-frames.js';
import type { Connection } from '../transport/types.js';
import type { ChannelEvent } from './channel.js';

export interface ControlFrameRoutes {
  /** The channel's peer (named in a refusal). */
  peer: string;
  /** A resync frame (PROTOCOL.md §7). */
  sync(frame: string, connection: Connection): void;
  /** A heartbeat (PROTOCOL.md §8). */
  heartbeat(frame: string, type: string, connection: Connection): void;
  /** A frame of a kind this version does not know: reported (rate-limited). */
  refused(event: Extract<ChannelEvent, { type: 'frame_refused' }>): void;
}

/** The channel's control-frame handler over `routes`. */
export function routeControlFrames(
  routes: ControlFrameRoutes,
): (frame: string, type: string, connection: Connection) => void {
  return (frame, type, connection) => {
    if (isSyncFrameType(type)) routes.sync(frame, connection);
    else if (type === 'Heartbeat') routes.heartbeat(frame, type, connection);
    // A frame of a kind this version does not know (a newer peer's, say): dropped, but
    // said, and the connection kept.
    else {
      routes.refused({
        type: 'frame_refused',
        peer: routes.peer,
        code: 'PROTOCOL_MALFORMED_FRAME',
        // Read from an unverified payload: kept short.
        frameType: type.slice(0, 64),
      });
    }
  };
}
