/**
 * `parley peer reset-epoch`: reinstate a peer's store epoch that a hostile hello (from someone
 * holding the peer's key) superseded, so the real peer is no longer refused with 4412
 * (docs/security.md, "Peer epoch reset"). With the node running it goes through the node's
 * admin route (the node's epoch guard is in memory, and the route stores the reset before it
 * answers); with the node stopped it writes the reset to the database directly.
 */
import { resolve } from 'node:path';
import { loadNodeConfig } from '../../config.js';
import { ParleyError } from '../../errors.js';
import type { EpochResetResult } from '../../health/epoch-reset.js';
import { resetPeerEpochOffline } from '../../health/epoch-reset.js';
import { channelAddress } from '../../protocol/index.js';
import { createHealthRepository } from '../../store/health-repository.js';
import { openStore } from '../../store/index.js';
import { adminRequest, resolveAdmin } from '../admin-client.js';
import { type CliIo, ExitCode } from '../io.js';
import { readLiveRuntimeFile } from '../runtime-file.js';

export interface PeerResetEpochOptions {
  config: string;
  /** The peer's address. */
  address: string;
  /** The epoch to reinstate (the real peer's: its `parley status` shows it). */
  epoch: string;
  /** The running node's admin URL. @default from the runtime file */
  url?: string;
  json?: boolean;
}

async function viaAdmin(file: string, io: CliIo, options: PeerResetEpochOptions, peer: string) {
  const target = resolveAdmin(file, io.env, options.url);
  const { status, body } = await adminRequest(target, 'POST', '/admin/peer-epoch', {
    peer,
    epoch: options.epoch,
  });
  const answer = (body ?? {}) as Partial<EpochResetResult> & { error?: string; message?: string };
  if (status !== 200) {
    throw new ParleyError(
      (answer.error ?? 'TRANSPORT_INTERNAL_ERROR') as ParleyError['code'],
      `the node answered ${status}: ${answer.message ?? JSON.stringify(body)}`,
    );
  }
  return answer as EpochResetResult;
}

async function offline(databaseUrl: string, peer: string, epoch: string): Promise<EpochResetResult> {
  const store = await openStore({ url: databaseUrl });
  try {
    return await resetPeerEpochOffline({ store: createHealthRepository(store), peers: store }, peer, epoch);
  } finally {
    await store.close();
  }
}

/**
 * @returns 0 when the epoch is the current one (reset, or already); 2 on a bad option or an
 *   epoch this node never replaced for the peer (nothing written); 1 when the node or store fails
 */
export async function runPeerResetEpoch(options: PeerResetEpochOptions, io: CliIo): Promise<number> {
  const file = resolve(io.cwd, options.config);
  const config = loadNodeConfig(file, io.env);
  const peer = channelAddress(options.address);
  if (!config.peers.some((p) => p.address === peer)) {
    throw new ParleyError('CONFIG_INVALID', `${peer} is not a peer in ${file}`);
  }
  const running = options.url !== undefined || readLiveRuntimeFile(file) !== undefined;
  const result = running
    ? await viaAdmin(file, io, options, peer)
    : await offline(config.database, peer, options.epoch);
  if (options.json) io.out(`${JSON.stringify({ ...result, via: running ? 'admin' : 'offline' })}\n`);
  else if (!result.changed)
    io.out(`${options.epoch} is already the current epoch of ${peer}; nothing changed.\n`);
  else {
    io.out(
      `Epoch ${result.epoch} of ${peer} is current again (${result.previousEpoch ?? 'none'} is now refused)` +
        `${running ? '' : '; the node reads it when it starts'}. Recorded as epoch_reset in the health history.\n`,
    );
  }
  return ExitCode.OK;
}
