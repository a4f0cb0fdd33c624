/** `parley pay`: ask the running node to start a payment (`POST /admin/pay`). */
import { resolve } from 'node:path';
import { ParleyError } from '../../errors.js';
import { adminRequest, resolveAdmin } from '../admin-client.js';
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
  json?: boolean;
  /** The node's admin URL. @default from the runtime file or the config */
  url?: string;
}

interface PayAnswer {
  referenceId?: string;
  /** The create command, once it is durable in the node's outbox. */
  cid?: string;
  outcome?: { cid: string; status: 'success' | 'failure'; code: string | null };
  /** With `wait`: the create is durable, but the node stopped serving the channel before its outcome. */
  durable?: boolean;
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
  const target = resolveAdmin(resolve(io.cwd, options.config), io.env, options.url);
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
    options.wait ? '/admin/pay?wait=1' : '/admin/pay',
    body,
  );
  const result = (answer ?? {}) as PayAnswer;
  if (status !== 200 && status !== 202) {
    if (options.json) io.out(`${JSON.stringify({ status, ...result })}\n`);
    throw new ParleyError(
      (result.error ?? 'TRANSPORT_INTERNAL_ERROR') as ParleyError['code'],
      `the node answered ${status}: ${result.message ?? JSON.stringify(answer)}`,
    );
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
  } else if (ok) {
    io.out(`Payment ${result.referenceId} created (command ${result.outcome.cid} succeeded).\n`);
  } else {
    io.err(
      `parley pay: payment ${result.referenceId}: the create command failed with ${result.outcome.code ?? 'an error'}\n`,
    );
  }
  return ok ? ExitCode.OK : ExitCode.FAILED;
}
