/** The back-office events the configuration asks for (`events`, docs/backoffice.md "Events"). */
import { readSecretFile } from '../business/configured-business.js';
import { createEventRepository } from '../store/event-repository.js';
import type { ParleyStore } from '../store/types.js';
import { createEventDelivery, type EventDelivery } from './delivery.js';

/** The `events` section of the configuration (structurally). */
export interface EventsConfig {
  readonly enabled: boolean;
  readonly url?: string | undefined;
  readonly secretFile?: string | undefined;
  readonly keyId: string;
  readonly timeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly retentionMs: number;
}

/** Whether the store writes events (a receiver is configured, or the stream is on). */
export function eventsRecorded(config: EventsConfig): boolean {
  return config.enabled || config.url !== undefined;
}

/**
 * Starts the delivery (webhook) and the feed (Server-Sent Events), or nothing when events are
 * off. @throws CONFIG_INVALID when the webhook secret cannot be read
 */
export function startConfiguredEvents(
  config: EventsConfig,
  deps: { store: ParleyStore; me: string; epoch: string; owned(): readonly string[] | null },
): EventDelivery | undefined {
  if (!eventsRecorded(config)) return undefined;
  const key =
    config.url !== undefined && config.secretFile !== undefined
      ? { id: config.keyId, secret: readSecretFile(config.secretFile) }
      : undefined;
  return createEventDelivery(
    {
      ...(config.url !== undefined ? { url: config.url } : {}),
      ...(key ? { key } : {}),
      timeoutMs: config.timeoutMs,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      retentionMs: config.retentionMs,
    },
    { repo: createEventRepository(deps.store), me: deps.me, epoch: deps.epoch, owned: deps.owned },
  );
}
