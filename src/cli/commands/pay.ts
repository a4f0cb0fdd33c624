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
  outcome?: { cid: string; status: 'success' | 'failure'; code: string | null };
  error?: string;
  message?: string;
}

/**
 * @returns 0 when the node took the payment (and, with `wait`, the create succeeded); 1 when
 *   the node is not running or the create failed; 2 when the node refused the input
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
  const ok = result.outcome === undefined || result.outcome.status === 'success';
  if (options.json) {
    io.out(`${JSON.stringify(result)}\n`);
  } else if (result.outcome === undefined) {
    io.out(`Payment ${result.referenceId} started (its progress is in the node's log).\n`);
  } else if (ok) {
    io.out(`Payment ${result.referenceId} created (command ${result.outcome.cid} succeeded).\n`);
  } else {
    io.err(
      `parley pay: payment ${result.referenceId}: the create command failed with ${result.outcome.code ?? 'an error'}\n`,
    );
  }
  return ok ? ExitCode.OK : ExitCode.FAILED;
}
