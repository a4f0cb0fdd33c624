/**
 * The business layer: the interface a VASP's business logic implements, the payment processor
 * that turns its decisions into my next payment version, the default automatic business, and the
 * first version of a new payment (lip1-v1.md §3.7, §5).
 */
export * from './auto-business.js';
export * from './backoffice-contract.js';
export * from './business-context.js';
export * from './configured-business.js';
export * from './new-payment.js';
export * from './payment-processor.js';
export * from './webhook-business.js';
