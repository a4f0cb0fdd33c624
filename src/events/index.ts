/**
 * Events for the back office (docs/backoffice.md, "Events"): the body of an event, its signed
 * delivery from the durable `webhook_event` table, and the feed the Server-Sent Events route reads.
 */
export * from './configured.js';
export * from './delivery.js';
export * from './event-body.js';
