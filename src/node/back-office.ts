/**
 * The node's wiring to the VASP's back office: the business `config.business` selects (its
 * answers and failures feed the `backoffice_unreachable` condition) and the back-office events
 * `config.events` asks for (docs/backoffice.md).
 */
import { type Subject, Subscription } from 'rxjs';
import { type BusinessContext, createConfiguredBusiness } from '../business/index.js';
import type { Channel } from '../channel/channel.js';
import type { NodeConfig } from '../config.js';
import { type DeliveryFailure, type EventDelivery, startConfiguredEvents } from '../events/index.js';
import type { HealthMonitor } from '../health/index.js';
import type { ParleyStore } from '../store/types.js';

/** An event for the back office was not acknowledged by its receiver; sent again after `retryInMs`. */
export type EventDeliveryFailed = { type: 'event_delivery_failed' } & DeliveryFailure;

/**
 * The business `config.business` selects; stopped with the node (or by `undo`), and its back
 * office's answers and failures go to the health monitor's `backoffice_unreachable` condition
 * (`health` is asked lazily: the monitor is made after the business).
 */
export function selectBusiness(
  config: NodeConfig,
  wire: { undo: Array<() => unknown>; subs: Subscription[]; health: () => HealthMonitor },
): BusinessContext {
  const configured = createConfiguredBusiness(config.business);
  wire.undo.push(() => configured.close());
  const reports = new Subscription(() => configured.close());
  reports.add(configured.reports$?.subscribe((r) => wire.health().backoffice.report(r)));
  wire.subs.push(reports);
  return configured.business;
}

/**
 * The back-office events `config.events` asks for: kicked by every node event (a commit, say),
 * delivered for the channels this replica serves, stopped with the node (or by `undo`).
 */
export function wireEvents<E extends { type: string }>(
  config: NodeConfig,
  wire: {
    store: ParleyStore;
    me: string;
    epoch: string;
    channels: ReadonlyMap<string, Channel>;
    events: Subject<E | EventDeliveryFailed>;
    subs: Subscription[];
    undo: Array<() => unknown>;
    /** Its `events_undeliverable` condition hears every attempt. */
    health: Pick<HealthMonitor, 'eventsDelivery'>;
  },
): { backofficeEvents?: EventDelivery } {
  const owned = () => [...wire.channels.values()].filter((c) => !c.suspended).map((c) => c.peer);
  const delivery = startConfiguredEvents(config.events, { ...wire, owned });
  if (!delivery) return {};
  wire.undo.push(() => delivery.close());
  const kicks = wire.events.subscribe(() => delivery.kick());
  kicks.add(
    delivery.failures$.subscribe((f) => {
      wire.events.next({ type: 'event_delivery_failed', ...f });
      wire.health.eventsDelivery.report({ ok: false, peer: f.peer, id: f.id, error: f.error });
    }),
  );
  kicks.add(delivery.delivered$.subscribe((d) => wire.health.eventsDelivery.report({ ok: true, ...d })));
  kicks.add(() => void delivery.close());
  wire.subs.push(kicks);
  return { backofficeEvents: delivery };
}
