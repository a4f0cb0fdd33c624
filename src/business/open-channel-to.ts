/**
 * Whether my business serves a channel to a peer now: `BusinessContext.openChannelTo`, asked at
 * each hello, dial and LIP-1 HTTP request, with a deadline.
 */
import { defer, firstValueFrom, throwError, timeout } from 'rxjs';
import { isParleyError, ParleyError } from '../errors.js';
import type { BusinessContext } from './business-context.js';

/** How long my business may take to answer `openChannelTo`. */
export const OPEN_CHANNEL_TO_TIMEOUT_MS = 5_000;

/**
 * Asks my business whether to serve a channel to `peer` now (each hello, dial and LIP-1 HTTP
 * request): it may refuse a counterparty for a while without a config change or a restart.
 * The function it returns throws BUSINESS_NOT_AUTHORIZED when it refuses,
 * TRANSPORT_INTERNAL_ERROR when it does not answer in time, and what else it throws, as is.
 */
export function createOpenChannelTo(business: BusinessContext): (peer: string) => Promise<void> {
  return async function openChannelTo(peer: string): Promise<void> {
    const ask = business.openChannelTo;
    if (!ask) return;
    try {
      // A business that hangs must not hold a dial, a handshake slot or the node's close.
      await firstValueFrom(
        defer(async () => ask.call(business, peer)).pipe(
          timeout({
            first: OPEN_CHANNEL_TO_TIMEOUT_MS,
            with: () =>
              throwError(
                () =>
                  new ParleyError(
                    'TRANSPORT_INTERNAL_ERROR',
                    `openChannelTo(${peer}) did not answer within ${OPEN_CHANNEL_TO_TIMEOUT_MS} ms`,
                  ),
              ),
          }),
        ),
      );
    } catch (err) {
      if (!isParleyError(err, 'BUSINESS_NOT_AUTHORIZED')) throw err;
      throw new ParleyError('BUSINESS_NOT_AUTHORIZED', `my business refuses a channel to ${peer} now`, {
        cause: err,
      });
    }
  };
}
