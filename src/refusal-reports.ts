/**
 * Rate-limited reports of what the node refused from outside: frames of the authenticated peer
 * it dropped (`frame_refused`, per channel, code and kind) and inbound LIP-1 HTTP requests it
 * refused (`lip1_request_refused`, per remote address, sender and reason). One event per key
 * and interval; how many more were refused meanwhile is said at the end of the interval
 * (`suppressed`), on a timer, so a flood is never silent and never floods the log.
 */
import type { SchedulerLike } from 'rxjs';
import type { ChannelEvent } from './channel/channel.js';
import { createReportThrottle } from './report-throttle.js';
import type { Lip1Refusal } from './transport/lip1-http.js';

/** Shortest time between two reports of one key. */
export const REFUSAL_REPORT_INTERVAL_MS = 10_000;
/** Keys tracked at once; past it, the other keys share one report. */
const MAX_REFUSAL_REPORT_KEYS = 1000;

export type FrameRefused = Extract<ChannelEvent, { type: 'frame_refused' }>;

/** An inbound LIP-1 HTTP request refused (bad signature, unknown sender, …): a warning. */
export type Lip1RequestRefused = Lip1Refusal & {
  type: 'lip1_request_refused';
  /** Refused for this key since the last report and not reported one by one. */
  suppressed?: number;
};

export interface RefusalReports {
  frameRefused(event: FrameRefused): void;
  lip1Refused(refusal: Lip1Refusal): void;
  /** Says what is held back and stops the timers. */
  close(): void;
}

export function createRefusalReports(deps: {
  emit(event: FrameRefused | Lip1RequestRefused): void;
  scheduler?: SchedulerLike;
  intervalMs?: number;
}): RefusalReports {
  const common = {
    intervalMs: deps.intervalMs ?? REFUSAL_REPORT_INTERVAL_MS,
    maxKeys: MAX_REFUSAL_REPORT_KEYS,
    ...(deps.scheduler ? { scheduler: deps.scheduler } : {}),
  };
  const withCount = <E extends object>(event: E, suppressed: number): E =>
    suppressed > 0 ? { ...event, suppressed } : event;
  const frames = createReportThrottle<FrameRefused>({
    ...common,
    emit: (event, suppressed) => deps.emit(withCount(event, suppressed)),
  });
  const requests = createReportThrottle<Lip1RequestRefused>({
    ...common,
    emit: (event, suppressed) => deps.emit(withCount(event, suppressed)),
  });
  return {
    frameRefused(event) {
      frames.report(`${event.peer}|${event.code}|${event.frameType ?? ''}`, event);
    },
    lip1Refused(refusal) {
      // The sender is read from the path, unauthenticated: kept short.
      const event: Lip1RequestRefused = {
        type: 'lip1_request_refused',
        ...refusal,
        sender: refusal.sender.slice(0, 128),
      };
      requests.report(`${refusal.remoteAddress ?? ''}|${event.sender}|${refusal.reason}`, event);
    },
    close() {
      frames.close();
      requests.close();
    },
  };
}
