/** `parley payment list` / `parley payment show <ref>`: the running node's payments view. */
import { resolve } from 'node:path';
import { addressProblem } from '../../admin/address-text.js';
import { ParleyError } from '../../errors.js';
import { adminRequest, connectToConfigNode, refusalOf } from '../admin-client.js';
import { type CliIo, ExitCode } from '../io.js';
import { table } from './apikey.js';

export interface PaymentListOptions {
  config: string;
  url?: string;
  json?: boolean;
  /** Query parameters of `GET /admin/payments` (peer, state, status, myStatus, theirStatus, since, until, limit, cursor). */
  filters: Record<string, string>;
}

interface Summary {
  peer: string;
  referenceId: string;
  open: boolean;
  updatedAt: string;
  myRole: string | null;
  myStatus: string | null;
  theirStatus: string | null;
  amount: number | null;
  currency: string | null;
  versionCount: number;
}

async function get(options: { config: string; url?: string }, io: CliIo, path: string): Promise<unknown> {
  const { target } = await connectToConfigNode(resolve(io.cwd, options.config), io.env, options.url);
  const answer = await adminRequest(target, 'GET', path);
  if (answer.status !== 200) throw refusalOf(answer.status, answer.body);
  return answer.body;
}

/** `parley payment list`. */
export async function runPaymentList(options: PaymentListOptions, io: CliIo): Promise<number> {
  const peer = options.filters['peer'];
  const problem = peer === undefined ? undefined : addressProblem(peer);
  if (problem !== undefined) throw new ParleyError('ADDRESS_INVALID', `--peer: ${problem}`);
  const query = new URLSearchParams(options.filters).toString();
  const page = (await get(options, io, `/admin/payments${query ? `?${query}` : ''}`)) as {
    payments: Summary[];
    nextCursor?: string;
  };
  if (options.json) {
    io.out(`${JSON.stringify(page)}\n`);
    return ExitCode.OK;
  }
  if (page.payments.length === 0) io.out('no payments match\n');
  else {
    const rows = page.payments.map((p) => [
      p.referenceId,
      p.peer,
      p.open ? 'open' : 'closed',
      p.myRole ?? '-',
      p.myStatus ?? '-',
      p.theirStatus ?? '-',
      p.amount === null ? '-' : `${p.amount} ${p.currency ?? ''}`.trim(),
      p.updatedAt,
    ]);
    io.out(
      table(['REFERENCE', 'PEER', 'STATE', 'ME', 'MY STATUS', 'THEIR STATUS', 'AMOUNT', 'UPDATED'], rows),
    );
  }
  if (page.nextCursor !== undefined) io.out(`more: --cursor ${page.nextCursor}\n`);
  return ExitCode.OK;
}

/** `parley payment show <ref>`: the object and its whole signed history. */
export async function runPaymentShow(
  options: { config: string; url?: string; json?: boolean; referenceId: string; peer?: string },
  io: CliIo,
): Promise<number> {
  const problem = options.peer === undefined ? undefined : addressProblem(options.peer);
  if (problem !== undefined) throw new ParleyError('ADDRESS_INVALID', `--peer: ${problem}`);
  const query = options.peer === undefined ? '' : `?peer=${encodeURIComponent(options.peer)}`;
  const detail = (await get(
    options,
    io,
    `/admin/payments/${encodeURIComponent(options.referenceId)}${query}`,
  )) as {
    summary: Summary;
    payment: unknown;
    history: Array<{
      cid: string;
      direction: string;
      status: string;
      errorCode: string | null;
      at: string;
      requestJws: string;
      responseJws: string;
    }>;
    pending: Array<{ cid: string; queuedAt: string; attempts: number; requestJws: string }>;
  };
  if (options.json) {
    io.out(`${JSON.stringify(detail)}\n`);
    return ExitCode.OK;
  }
  const s = detail.summary;
  io.out(
    [
      `payment  ${s.referenceId}`,
      `peer     ${s.peer}`,
      `state    ${s.open ? 'open' : 'closed'} (${s.versionCount} version(s), last change ${s.updatedAt})`,
      `me       ${s.myRole ?? '-'}: ${s.myStatus ?? '-'}; them: ${s.theirStatus ?? '-'}`,
      '',
      'object:',
      JSON.stringify(detail.payment, null, 2),
      '',
      `signed history (${detail.history.length} command(s); \`parley frame <jws>\` decodes one):`,
      ...detail.history.flatMap((c, i) => [
        `${i + 1}. ${c.at} ${c.direction === 'outbound' ? 'me → peer' : 'peer → me'} ${c.cid} ${c.status}${c.errorCode ? ` ${c.errorCode}` : ''}`,
        `   request  ${c.requestJws}`,
        `   response ${c.responseJws}`,
      ]),
      ...(detail.pending.length > 0
        ? [
            '',
            'waiting for the peer:',
            ...detail.pending.map(
              (c) => `- ${c.cid} queued ${c.queuedAt}, ${c.attempts} attempt(s)\n  request  ${c.requestJws}`,
            ),
          ]
        : []),
      '',
    ].join('\n'),
  );
  return ExitCode.OK;
}
