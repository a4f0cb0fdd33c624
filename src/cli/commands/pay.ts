/** `parley pay`: ask the running node to start a payment (`POST /admin/pay`). */
import { resolve } from 'node:path';
import { addressProblem } from '../../admin/address-text.js';
import { ParleyError } from '../../errors.js';
import { channelAddress } from '../../protocol/index.js';
import { adminRequest, connectToConfigNode, refusalOf } from '../admin-client.js';
import { type CliIo, ExitCode } from '../io.js';

export interface PayOptions {
  config: string;
  to: string;
  amount: number;
  currency: string;
  description?: string;
  fromSubaddressHex?: string;
  toSubaddressHex?: string;
  /** Wait for the create command's final outcome. */
  wait?: boolean;
  /** With `wait`: seconds to wait for it. @default 30 */
  timeoutSeconds?: number;
  json?: boolean;
  /** The node's admin URL. @default from the runtime file or the config */
  url?: string;
}

/** How long `pay --wait` waits for the final response by default. */
export const DEFAULT_TIMEOUT_SECONDS = 30;

interface PayAnswer {
  referenceId?: string;
  /** The create command, once it is durable in the node's outbox. */
  cid?: string;
  outcome?: { cid: string; status: 'success' | 'failure'; code: string | null };
  /** With `wait`: the create is durable, but its outcome is not known yet (timeout, channel not served here). */
  durable?: boolean;
  /** The channel to the payee when the payment was accepted. */
  peer?: { state: string; health?: string };
  error?: string;
  message?: string;
}

/**
 * @returns 0 only when the node acknowledged the payment as durable (`202` with its reference
 *   id and create cid) and, with `wait`, the create succeeded (`200`); 1 when the node is not
 *   running, refused or failed the create (the code is on stderr), or with `wait` when the create
 *   is durable but its outcome is not known yet; 2 when the node refused the input
 */
export async function runPay(options: PayOptions, io: CliIo): Promise<number> {
  const problem = addressProblem(options.to);
  if (problem !== undefined) throw new ParleyError('ADDRESS_INVALID', `--to: ${problem}`);
  const to = channelAddress(options.to);
  // Only the config's own node (anything else answering at its address is "not running").
  const { target, status: node } = await connectToConfigNode(
    resolve(io.cwd, options.config),
    io.env,
    options.url,
  );
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  const channel = node.channels.find((c) => c.peer === to);
  const down = channel !== undefined && (channel.state !== 'connected' || channel.health?.state === 'down');
  if (down && !options.json) {
    io.err(
      `parley pay: the channel to ${to} is down now (${channel.state}${channel.health ? `, ${channel.health.state}` : ''}): ${
        options.wait
          ? `waiting up to ${timeoutSeconds} s for the peer to answer`
          : 'the payment is sent when the peer is back'
      }\n`,
    );
  }
  const body = {
    to: options.to,
    amount: options.amount,
    currency: options.currency,
    ...(options.description !== undefined ? { description: options.description } : {}),
    ...(options.fromSubaddressHex !== undefined ? { fromSubaddressHex: options.fromSubaddressHex } : {}),
    ...(options.toSubaddressHex !== undefined ? { toSubaddressHex: options.toSubaddressHex } : {}),
  };
  const { status, body: answer } = await adminRequest(
    target,
    'POST',
    options.wait ? `/admin/pay?wait=1&timeoutMs=${timeoutSeconds * 1000}` : '/admin/pay',
    body,
  );
  const result = (answer ?? {}) as PayAnswer;
  if (status !== 200 && status !== 202) {
    if (options.json) io.out(`${JSON.stringify({ status, ...result })}\n`);
    throw refusalOf(status, answer);
  }
  if (options.wait && status === 202 && result.durable === true) {
    if (options.json) io.out(`${JSON.stringify(result)}\n`);
    io.err(
      `parley pay: payment ${result.referenceId} is durable (command ${result.cid} is in the node's outbox and completes when the channel is served again), but its outcome is not known yet: ${result.error}: ${result.message}\n`,
    );
    return ExitCode.FAILED;
  }
  // Exit 0 only on the answer that says the create is durable (and, with `wait`, final).
  const acknowledged = options.wait
    ? status === 200 && result.outcome !== undefined
    : status === 202 && result.cid !== undefined;
  if (!acknowledged) {
    throw new ParleyError(
      'TRANSPORT_INTERNAL_ERROR',
      `the node answered ${status} ${JSON.stringify(answer)}, not a durable acknowledgement`,
    );
  }
  const ok = result.outcome === undefined || result.outcome.status === 'success';
  if (options.json) {
    io.out(`${JSON.stringify(result)}\n`);
  } else if (result.outcome === undefined) {
    io.out(
      `Payment ${result.referenceId} accepted: its create (command ${result.cid}) is durable in the node's outbox (its progress is in the node's log).\n`,
    );
    if (result.peer !== undefined && (result.peer.state !== 'connected' || result.peer.health === 'down')) {
      io.err(
        `parley pay: note: the channel to ${to} is down (${result.peer.state}${result.peer.health ? `, ${result.peer.health}` : ''}): the create is sent when the peer is back (\`parley status\`, \`parley payment show ${result.referenceId}\`)\n`,
      );
    }
  } else if (ok) {
    io.out(`Payment ${result.referenceId} created (command ${result.outcome.cid} succeeded).\n`);
  } else {
    io.err(
      `parley pay: payment ${result.referenceId}: the create command failed with ${result.outcome.code ?? 'an error'}\n`,
    );
  }
  return ok ? ExitCode.OK : ExitCode.FAILED;
}
