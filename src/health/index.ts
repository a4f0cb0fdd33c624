/**
 * Channel health: heartbeats, the phi accrual failure detector, state-loss detection, zombie
 * fencing, the health history, `/healthz` and `/metrics` (PROTOCOL.md §8, DESIGN.md §4).
 */
export * from './channel-health.js';
export * from './epoch-guard.js';
export * from './failure-detector.js';
export * from './health-monitor.js';
export * from './http.js';
export * from './memory-health-store.js';
export * from './metrics.js';
export * from './options.js';
export * from './peer-behind.js';
export type * from './ports.js';
export * from './status.js';
export * from './store-writability.js';
