/**
 * The body of `POST /admin/pay`, validated at the edge: nothing reaches the node unless it
 * passes.
 */
import { z } from 'zod';
import { isAddress } from '../protocol/index.js';

const SubaddressHex = z
  .string()
  .regex(/^[0-9a-fA-F]{16}$/, 'expected 16 hex digits')
  .refine((hex) => !/^0+$/.test(hex), 'a payment actor needs a non-zero subaddress');

/** A payment to start, as an operator asks for it. Unknown members are refused (a typo must not pass). */
export const AdminPayRequest = z.strictObject({
  /** The counterparty VASP (bech32); it must be a configured peer. */
  to: z.string().refine((text) => isAddress(text), 'not a bech32 account address'),
  /** A positive integer in the currency's smallest unit. */
  amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  /** A currency code such as `XUS`, `TIK` or `Coin1`. */
  currency: z.string().regex(/^[A-Za-z0-9_]{1,32}$/, 'expected 1-32 letters, digits or _'),
  description: z.string().max(4096).optional(),
  /** The paying account at this VASP. @default 0000000000000001 */
  fromSubaddressHex: SubaddressHex.optional(),
  /** The payee's account at the peer VASP. @default 0000000000000001 */
  toSubaddressHex: SubaddressHex.optional(),
});
export type AdminPayRequest = z.infer<typeof AdminPayRequest>;

/** One problem with a request, for the `issues` member of a 400 answer. */
export interface RequestIssue {
  path: string;
  message: string;
}

/** Flattens zod issues to `{path, message}` pairs (raw zod errors never leave the node). */
export function requestIssues(error: z.ZodError): RequestIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.join('.') || '(body)', message: issue.message }));
}
