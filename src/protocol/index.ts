/**
 * The pure protocol core: LIP-1 v1 schemas and codec, compact JWS over Ed25519, LIP-5
 * addresses, protocol roles and the LIP-1 error catalog. No I/O besides crypto, no timers.
 */
export * from './address.js';
export * from './base64url.js';
export * from './channel-frames.js';
export * from './close-codes.js';
export * from './codec.js';
export * from './json-equal.js';
export * from './jws.js';
export * from './keys.js';
export * from './lip1.js';
export * from './lip1-errors.js';
export * from './roles.js';
