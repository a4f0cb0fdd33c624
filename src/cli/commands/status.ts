/** `parley status`: the running node's channels (`GET /admin/status`). */
import { resolve } from 'node:path';
import type { AdminStatus } from '../../admin/routes.js';
import { connectToConfigNode } from '../admin-client.js';
import { type CliIo, ExitCode } from '../io.js';

export interface StatusOptions {
  config: string;
  json?: boolean;
  /** The node's admin URL. @default from the runtime file or the config */
  url?: string;
}

/** @returns 0 with the status printed; 1 when the node is not running (`NODE_NOT_RUNNING`) */
export async function runStatus(options: StatusOptions, io: CliIo): Promise<number> {
  // Only the config's own node: anything else answering at its address is "not running".
  const { status: node } = await connectToConfigNode(resolve(io.cwd, options.config), io.env, options.url);
  io.out(options.json ? `${JSON.stringify(node)}\n` : formatStatus(node));
  return ExitCode.OK;
}

/** A channel's closed-object restore (PROTOCOL.md §7.6), one line. */
function restoreLine(peer: string, r: NonNullable<AdminStatus['channels'][number]['restore']>): string {
  const who = r.role === 'leader' ? `this node restores ${peer}` : `${peer} restores this node`;
  const counts = r.role === 'leader' ? `${r.moved} moved of ${r.compared} compared` : `${r.moved} stored`;
  const why = r.error ? ` (${r.error}; resumes at the next connection)` : '';
  return `restore ${r.state}: ${who} (${r.reason}), ${counts}${why}`;
}

/** The human table of `parley status`. */
export function formatStatus(node: AdminStatus): string {
  // Several replicas: which channels this replica serves (`owner`) and which it stands by for.
  const leases = node.channels.some((c) => c.lease !== undefined);
  // A peer that is `peer_behind`: commands of mine stuck there (docs/operations.md, "Peer behind").
  const behind = node.channels.some((c) => c.peerBehind !== undefined);
  // Named peers (config `peers[].name`): their names beside the addresses.
  const named = node.channels.some((c) => c.name !== undefined && c.name !== c.peer);
  const header = [
    'PEER',
    ...(named ? ['NAME'] : []),
    'STATE',
    'HEALTH',
    'RTT',
    'INFLIGHT',
    'OPEN',
    'PEER EPOCH',
    ...(behind ? ['BEHIND'] : []),
    ...(leases ? ['LEASE'] : []),
  ];
  const rows = node.channels.map((c) => [
    c.peer,
    ...(named ? [c.name ?? '-'] : []),
    c.state,
    c.health?.state ?? '-',
    // No RTT for a channel that is down: the last one measured would be stale.
    c.health?.rttMs == null || c.health.state === 'down' || c.state !== 'connected'
      ? '-'
      : `${c.health.rttMs.toFixed(1)}ms`,
    String(c.inflight),
    String(c.openObjects),
    c.peerEpoch ?? '-',
    ...(behind ? [c.peerBehind ? `peer_behind ${c.peerBehind.commands}` : '-'] : []),
    ...(leases ? [c.lease ?? '-'] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    `node   ${node.address}`,
    `url    ${node.url}`,
    `epoch  ${node.epoch}`,
    ...(node.store?.store === 'unwritable'
      ? [
          `store  UNWRITABLE (${node.store.code ?? 'STORE_UNAVAILABLE'} since ${new Date(node.store.sinceMs ?? 0).toISOString()})`,
        ]
      : []),
    ...(node.backoffice ?? []).map(
      (b) =>
        `backoffice_unreachable ${b.peer}: payments wait since ${new Date(b.sinceMs).toISOString()} (${b.error})`,
    ),
    ...(node.eventsUndeliverable ?? []).map(
      (e) =>
        `events_undeliverable: ${e.failures} deliveries in a row failed since ${new Date(e.sinceMs).toISOString()} (${e.error}); later events wait behind ${e.eventId}`,
    ),
    '',
    ...(rows.length === 0
      ? ['no peers configured (add one with `parley peer add`)']
      : [line(header), ...rows.map(line)]),
    ...node.channels.flatMap((c) => (c.restore ? ['', restoreLine(c.peer, c.restore)] : [])),
    ...node.channels.flatMap((c) =>
      (c.inflightStates?.unapplied ?? 0) > 0
        ? [
            '',
            `unapplied ${c.peer}: ${c.inflightStates!.unapplied} command(s) of mine answered by the peer with an answer that cannot end them here (a fork, or a command already final); they stay in flight until abandoned (\`parley command abandon <cid>\`, docs/operations.md)`,
          ]
        : [],
    ),
    ...node.channels.flatMap((c) =>
      c.peerBehind
        ? [
            '',
            `peer_behind ${c.peer}: ${c.peerBehind.commands} command(s) answered \`wait\` with no progress:`,
            ...c.peerBehind.cids.map((cid) => `  ${cid}`),
            '  end one with `parley command abandon <cid>` (docs/operations.md)',
          ]
        : [],
    ),
    '',
  ].join('\n');
}
