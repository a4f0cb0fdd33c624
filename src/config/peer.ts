/**
 * Parts of the configuration schema: keys and addresses, and a counterparty (`peers[]`) with
 * the check of its URL against its transport.
 */
import { z } from 'zod';
import { channelAddress } from '../protocol/index.js';
import { isLoopbackUrl } from '../transport/loopback.js';
import { section } from './strict.js';

export const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 32 bytes as 64 lowercase hex characters');

export const Address = z.string().transform((text, ctx) => {
  try {
    return channelAddress(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a bech32 account address: ${text}` });
    return z.NEVER;
  }
});

/**
 * For a cross-field check: run it whenever the value is an object, even with problems in its
 * fields, so one pass lists every problem (the check reads its fields loosely).
 */
export function isObjectPayload(payload: { value: unknown }): boolean {
  return typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value);
}

/** A configured counterparty. */
export const PeerConfig = section({
  address: Address.describe('its on-chain account address, bech32'),
  name: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .optional()
    .describe(
      "the operator's name for it (`VASP B`): shown instead of its address in the dashboard, `parley status`, logs and metric labels (`peer_name`); without it, the address",
    ),
  publicKey: Hex32.describe('its compliance key: raw Ed25519 public key, hex'),
  retiredPublicKeys: z
    .array(Hex32)
    .default([])
    .describe(
      'the keys it used before `publicKey` (a key rotation), newest first: what it signed with them (signed histories a resync brings, commands signed before the rotation) still verifies; its hello and every live command must be signed with `publicKey`. Leave out a key that leaked',
    ),
  transport: z
    .enum(['ws', 'lip1-http'])
    .default('ws')
    .describe(
      "`ws`: Parley's WebSocket channel. `lip1-http`: LIP-1 v1 over HTTP, for a counterparty running the LIP-1 reference or its kin (no heartbeats, no resync: `src/protocol/PROTOCOL.md` §4)",
    ),
  url: z
    .string()
    .optional()
    .describe(
      '`ws`: its channel endpoint (`wss://`, or `ws://` on loopback); omit for a peer that only dials this node. `lip1-http`: its base URL (`https://`, or `http://` on loopback), required: commands go to `<url>/v1/<me>/<peer>/command`',
    ),
}).superRefine(
  (peer, ctx) => {
    const problem = peerUrlProblem(peer);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: problem });
  },
  { when: isObjectPayload },
);
export type PeerConfig = z.infer<typeof PeerConfig>;

/**
 * What is wrong with a peer's URL for its transport, or undefined. Reads its input loosely (it
 * runs on input that may have other problems).
 */
function peerUrlProblem(peer: { transport?: unknown; url?: unknown }): string | undefined {
  const transport = peer.transport ?? 'ws';
  const url = typeof peer.url === 'string' ? peer.url : undefined;
  if (peer.url !== undefined && url === undefined) return undefined; // its type error is reported
  if (transport === 'ws') {
    if (url === undefined) return undefined;
    if (!/^wss?:\/\/[^/]/.test(url)) return 'expected a ws:// or wss:// URL';
    // The node never dials plain ws off this machine (TRANSPORT_INSECURE at every dial).
    if (url.startsWith('ws://') && !isLoopbackUrl(url)) return 'plain ws:// only on loopback (use wss://)';
    return undefined;
  }
  if (transport !== 'lip1-http') return undefined;
  if (!/^https?:\/\/[^/]/.test(url ?? '')) return 'a lip1-http peer needs an http:// or https:// URL';
  // Commands and their answers travel in the clear, and an answer pairs with its request by an
  // unsigned header only: plain HTTP on loopback only (a TLS proxy in front of a plain
  // reference, say).
  if (url?.startsWith('http://') && !isLoopbackUrl(url))
    return 'plain http:// only on loopback (use https://)';
  return undefined;
}
