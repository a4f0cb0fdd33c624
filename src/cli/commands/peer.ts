/** `parley peer add`: put a counterparty in a node's config. */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { readJsonObject } from '../../config/json-file.js';
import { PeerConfig, resolveNodeConfig } from '../../config.js';
import { ParleyError } from '../../errors.js';
import { channelAddress } from '../../protocol/index.js';
import { writeFileDurably } from '../durable-file.js';
import { type CliIo, ExitCode } from '../io.js';

export interface PeerAddOptions {
  config: string;
  address: string;
  publicKey: string;
  /** Its channel endpoint (omit for a peer that only dials us); its base URL for `lip1-http`. */
  url?: string;
  /** `ws` (default) or `lip1-http`. */
  transport?: string;
}

/**
 * Adds the peer, or replaces the entry with the same address. The file is validated as a whole
 * before it is replaced (atomically, keeping mode 0600); nothing changes on a refusal.
 * @throws CONFIG_INVALID
 */
export function runPeerAdd(options: PeerAddOptions, io: CliIo): number {
  const file = resolve(io.cwd, options.config);
  const raw = readJsonObject(file);
  const entry = {
    address: options.address,
    publicKey: options.publicKey.toLowerCase(),
    ...(options.transport !== undefined ? { transport: options.transport } : {}),
    ...(options.url !== undefined ? { url: options.url } : {}),
  };
  const parsed = PeerConfig.safeParse(entry);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ParleyError('CONFIG_INVALID', problems, { cause: parsed.error });
  }
  const peer = parsed.data;
  // As the node reads it: with the environment, the key seed possibly in a file or a variable.
  const self = resolveNodeConfig(raw, file, io.env);
  if (peer.address === self.address) throw new ParleyError('CONFIG_INVALID', 'a node cannot be its own peer');

  const peers = Array.isArray(raw['peers'])
    ? (raw['peers'] as Array<{ address?: unknown; publicKey?: unknown; retiredPublicKeys?: unknown }>)
    : [];
  const same = (p: { address?: unknown }): boolean =>
    typeof p.address === 'string' && safeChannelAddress(p.address) === peer.address;
  const previous = peers.find(same);
  const kept = peers.filter((p) => !same(p));
  const updated = previous !== undefined;
  // A new key for a known peer (it rotated): its former keys stay, retired, so that what it
  // signed with them still verifies.
  const formerKeys = [
    ...(typeof previous?.publicKey === 'string' ? [previous.publicKey.toLowerCase()] : []),
    ...(Array.isArray(previous?.retiredPublicKeys) ? (previous.retiredPublicKeys as string[]) : []),
  ].filter((key, i, all) => key !== entry.publicKey && all.indexOf(key) === i);
  const retired = formerKeys.length > 0 ? { retiredPublicKeys: formerKeys } : {};
  // The file keeps what was given (no defaults written out), with the address in channel form.
  const next = { ...raw, peers: [...kept, { ...entry, address: peer.address, ...retired }] };
  resolveNodeConfig(next, file, io.env);

  // Replaced atomically and flushed to disk before the command exits 0.
  writeFileDurably(file, `${JSON.stringify(next, null, 2)}\n`, {
    mode: statSync(file).mode & 0o777,
    replace: true,
  });
  io.out(
    `${updated ? 'Updated' : 'Added'} peer ${peer.address}${peer.url ? ` at ${peer.url}` : ' (it dials us)'}.` +
      (formerKeys.length > 0 && previous?.publicKey !== entry.publicKey
        ? ` Its former key is kept as retired (${formerKeys.length} retired in all).`
        : '') +
      ' A running node picks it up when restarted.\n',
  );
  return ExitCode.OK;
}

function safeChannelAddress(text: string): string | undefined {
  try {
    return channelAddress(text);
  } catch {
    return undefined;
  }
}
