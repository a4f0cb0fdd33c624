/**
 * Pure payment-object rules: the status machine and the LIP-1 v1 command checks.
 */
export * from './payment.js';
export * from './status.js';
