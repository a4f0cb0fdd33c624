/** `parley peer add|list|remove`: the counterparties in a node's config. */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { addressProblem } from '../../admin/address-text.js';
import { readJsonObject } from '../../config/json-file.js';
import { PeerConfig, resolveNodeConfig } from '../../config.js';
import { ParleyError } from '../../errors.js';
import { channelAddress } from '../../protocol/index.js';
import { connectToConfigNode } from '../admin-client.js';
import { writeFileDurably } from '../durable-file.js';
import { type CliIo, ExitCode } from '../io.js';
import { readLiveRuntimeFile } from '../runtime-file.js';
import { table } from './apikey.js';

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
  const problem = addressProblem(options.address);
  // The entry it would write is what is invalid: CONFIG_INVALID, in plain words.
  if (problem !== undefined) throw new ParleyError('CONFIG_INVALID', `--address: ${problem}`);
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

/** `parley peer list`: the config's peers, with each channel's state when the node runs. */
export async function runPeerList(options: { config: string; json?: boolean }, io: CliIo): Promise<number> {
  const file = resolve(io.cwd, options.config);
  const raw = readJsonObject(file);
  const config = resolveNodeConfig(raw, file, io.env);
  // The live state only when the config's own node answers (nothing else is asked).
  const live = readLiveRuntimeFile(file)
    ? await connectToConfigNode(file, io.env).then(
        ({ status }) => new Map(status.channels.map((c) => [c.peer, c])),
        () => undefined,
      )
    : undefined;
  const peers = config.peers.map((p) => {
    const channel = live?.get(p.address);
    return {
      address: p.address,
      ...(p.name !== undefined ? { name: p.name } : {}),
      transport: p.transport ?? 'ws',
      url: p.url ?? null,
      ...(channel ? { state: channel.state, health: channel.health?.state ?? null } : {}),
    };
  });
  if (options.json) {
    io.out(`${JSON.stringify(peers)}\n`);
    return ExitCode.OK;
  }
  if (peers.length === 0) {
    io.out('no peers configured (add one with `parley peer add`)\n');
    return ExitCode.OK;
  }
  const rows = peers.map((p) => [
    p.address,
    p.name ?? '-',
    p.transport,
    p.url ?? '(it dials us)',
    live === undefined ? 'node not running' : `${p.state ?? '-'}${p.health ? ` / ${p.health}` : ''}`,
  ]);
  io.out(table(['PEER', 'NAME', 'TRANSPORT', 'URL', 'CHANNEL'], rows));
  return ExitCode.OK;
}

/**
 * `parley peer remove --address <bech32>`: takes the peer out of the config (validated, replaced
 * atomically). What the node stored with it stays in its database; a running node drops the
 * channel when restarted.
 * @throws ADDRESS_INVALID; CONFIG_INVALID when it is not a configured peer
 */
export function runPeerRemove(options: { config: string; address: string }, io: CliIo): number {
  const problem = addressProblem(options.address);
  if (problem !== undefined) throw new ParleyError('ADDRESS_INVALID', `--address: ${problem}`);
  const address = channelAddress(options.address);
  const file = resolve(io.cwd, options.config);
  const raw = readJsonObject(file);
  const peers = Array.isArray(raw['peers']) ? (raw['peers'] as Array<{ address?: unknown }>) : [];
  const kept = peers.filter(
    (p) => !(typeof p.address === 'string' && safeChannelAddress(p.address) === address),
  );
  if (kept.length === peers.length) {
    throw new ParleyError('CONFIG_INVALID', `${address} is not a peer in ${file} (\`parley peer list\`)`);
  }
  const next = { ...raw, peers: kept };
  resolveNodeConfig(next, file, io.env);
  writeFileDurably(file, `${JSON.stringify(next, null, 2)}\n`, {
    mode: statSync(file).mode & 0o777,
    replace: true,
  });
  io.out(
    `Removed peer ${address}. Its payments and signed history stay in the database; a running node drops the channel when restarted.\n`,
  );
  return ExitCode.OK;
}
