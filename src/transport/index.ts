/**
 * The WebSocket transport of the channel: server, dialer, connection, duplicate resolution and
 * the handshake (PROTOCOL.md §5–6). The rest of Parley sees only `Connection`.
 */
export * from './backoff.js';
export * from './close-errors.js';
export * from './connection-registry.js';
export * from './defaults.js';
export * from './handshake.js';
export * from './loopback.js';
export * from './replay-cache.js';
export * from './types.js';
export * from './ws-connection.js';
export * from './ws-dialer.js';
export * from './ws-server.js';
