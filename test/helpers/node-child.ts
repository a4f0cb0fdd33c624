/**
 * A VASP node in its own process, for tests and benchmarks that need real process boundaries
 * (SIGKILL, two event loops, two CPUs).
 *
 *   node --import tsx test/helpers/node-child.ts <config.json> [--business=auto|inert] [--quiet] [--admin]
 *
 * The config file is a node config as `parley start` reads it (`loadNodeConfig`).
 * `--business=inert`: a business that never answers a peer's command (creates stay open), to
 * measure bare command throughput. `--quiet`: no per-command lines (benchmarks). `--admin`: serve
 * the admin routes (`src/admin/routes.ts`, loopback clients, no token) on the node's port.
 *
 * stdout: one JSON object per line (`ChildLine` in `node-process.ts`):
 *   {"t":"ready","url","port","address","epoch","pid"}      once listening
 *   {"t":"cmd","dir":"out"|"in","cid","ref","create","status","code","final"}
 *        a command's final outcome, after it is durable: `out` = mine (the peer answered),
 *        `in` = the peer's (committed here; the response goes out after this line)
 *   {"t":"queued","cid","ref"}                              a command of mine is durable in the outbox
 *   {"t":"failed","ref","cid","code"}                       business driver: my command failed
 *   {"t":"conn","peer","id","dialed"} / {"t":"disc","peer","code","reason"}
 *   {"t":"health","peer","from","to","cause"}               a health transition of a channel
 *   {"t":"lease","type","peer","reason"}                    a lease taken or lost (replicas)
 *   {"t":"restore","peer","role","state","moved","after"}    closed-object restore progress (§7.6)
 *   {"t":"status",…} / {"t":"batch",…} / {"t":"rtt",…}      answers to stdin requests
 *   {"t":"error","where","message"}                         anything unexpected
 *
 * stdin: one JSON request per line:
 *   {"op":"pay","to","count","amount"?}                      start `count` payments at once
 *   {"op":"status","id"?}                                   → {"t":"status","id",…}
 *   {"op":"batch","id","to","count","until":"created"|"settled"}
 *        start `count` payments and answer once all are created / final here, with the time
 *   {"op":"rtt","id","to","count"}                           `count` creates one at a time,
 *        answers with each round trip in ms
 *   {"op":"cpu","id"}                                       → {"t":"cpu","id","ms"}: CPU time used so far
 *   {"op":"exit"}                                           same as SIGTERM
 *
 * stdout writes to a pipe are synchronous on Linux, so a line the parent reads was written
 * after what it reports had happened (a SIGKILL cannot reorder them).
 */
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { lastValueFrom } from 'rxjs';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type { BusinessContext } from '../../src/business/index.js';
import type { CommandOutcome, IncomingCommand, InflightStates } from '../../src/channel/channel.js';
import { loadNodeConfig } from '../../src/config.js';
import { createVaspNode, type VaspNode } from '../../src/node.js';
import { isFinal } from '../../src/objects/index.js';

const args = process.argv.slice(2);
const configFile = args.find((a) => !a.startsWith('--'));
const flag = (name: string): string | undefined =>
  args.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))?.split('=')[1] ?? undefined;
const quiet = args.includes('--quiet');
const businessName = flag('business') ?? 'auto';

if (!configFile || (businessName !== 'auto' && businessName !== 'inert')) {
  process.stderr.write('usage: node-child.ts <config.json> [--business=auto|inert] [--quiet] [--admin]\n');
  process.exit(2);
}

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** A business that never changes its side: the peer's creates are committed and left open. */
function inertBusiness(): BusinessContext<undefined> {
  return {
    paymentPreProcessing: async () => undefined,
    paymentInitialProcessing: async () => undefined,
    checkAccountExistence: async () => undefined,
    validateRecipientSignature: () => undefined,
    getRecipientSignature: async () => '',
    nextKycToProvide: async () => new Set(),
    nextKycLevelToRequest: async () => 'none',
    getExtendedKyc: async () => ({ payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' }),
    getAdditionalKyc: async () => ({ payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' }),
    readyForSettlement: async () => false,
  };
}

const config = loadNodeConfig(configFile);
const node: VaspNode = await createVaspNode(
  config,
  businessName === 'inert' ? { business: inertBusiness() } : {},
);

if (args.includes('--admin')) registerAdminRoutes(node);

/** Waiters for "this payment is final here" (batches with until=settled). */
const settledWaiters = new Map<string, () => void>();
let pendingPays = 0;

function onCommitted(dir: 'out' | 'in', c: CommandOutcome | IncomingCommand): void {
  const payment = c.request.command.payment;
  const final = c.status === 'success' && isFinal(payment);
  if (!quiet) {
    emit({
      t: 'cmd',
      dir,
      cid: c.request.cid,
      ref: payment.reference_id,
      create: c.record.readVersion === null,
      status: c.status,
      code: c.code,
      final,
    });
  }
  if (final) {
    settledWaiters.get(payment.reference_id)?.();
    settledWaiters.delete(payment.reference_id);
  }
}

for (const channel of node.channels) {
  channel.outcomes$.subscribe((o) => onCommitted('out', o));
  channel.commands$.subscribe((c) => onCommitted('in', c));
}
node.events$.subscribe((event) => {
  switch (event.type) {
    case 'connected':
      emit({
        t: 'conn',
        peer: event.peer,
        id: node.channel(event.peer).connection?.id ?? null,
        dialed: event.dialed,
      });
      break;
    case 'disconnected':
      emit({ t: 'disc', peer: event.peer, code: event.closeCode, reason: event.reason });
      break;
    case 'lease_acquired':
    case 'lease_lost':
      emit({
        t: 'lease',
        type: event.type,
        peer: event.peer,
        reason: event.type === 'lease_lost' ? event.reason : null,
      });
      break;
    case 'command_queued':
      if (!quiet) emit({ t: 'queued', cid: event.cid, ref: event.referenceId });
      break;
    case 'command_failed':
      emit({ t: 'failed', ref: event.referenceId, cid: event.cid, code: event.code });
      break;
    case 'restore_progress':
    case 'restore_finished':
      emit({
        t: 'restore',
        peer: event.peer,
        role: event.role,
        state: event.state,
        moved: event.moved,
        after: event.after,
      });
      break;
    case 'business_error':
      emit({ t: 'error', where: 'business', ref: event.referenceId, message: event.message });
      break;
    case 'frame_refused':
      if (!quiet) emit({ t: 'refused', peer: event.peer, code: event.code });
      break;
    default:
      break;
  }
});

// Health transitions, for tests and benchmarks that follow a channel's state across restarts.
node.health$.subscribe((event) => {
  if (event.kind !== 'transition') return;
  emit({ t: 'health', peer: event.peer, from: event.from, to: event.to, cause: event.cause });
});

/** Starts one payment; resolves with its create's outcome (or rejects). */
function pay(to: string, amount: number): { ref: string; done: Promise<CommandOutcome> } {
  const { referenceId, outcome$ } = node.pay({ to, amount, currency: 'TIK' });
  pendingPays++;
  const done = lastValueFrom(outcome$).finally(() => {
    pendingPays--;
  });
  done.catch((err: unknown) => {
    emit({ t: 'error', where: 'pay', ref: referenceId, message: String(err) });
  });
  return { ref: referenceId, done };
}

interface Request {
  op: string;
  id?: string;
  to?: string;
  count?: number;
  amount?: number;
  until?: 'created' | 'settled';
}

async function handle(req: Request): Promise<void> {
  switch (req.op) {
    case 'pay': {
      for (let i = 0; i < (req.count ?? 1); i++) pay(req.to!, req.amount ?? 100 + i);
      return;
    }
    case 'status': {
      let inflight = 0;
      let open = 0;
      const connections: Record<string, string | null> = {};
      /** What the commands in flight wait on, per channel with any (shown when a test times out). */
      const waitingOn: Record<string, InflightStates> = {};
      for (const channel of node.channels) {
        inflight += channel.inflight;
        if (channel.inflight > 0) waitingOn[channel.peer] = channel.inflightStates;
        open += await node.store.countOpenObjects(channel.peer);
        connections[channel.peer] = channel.connection?.id ?? null;
      }
      emit({ t: 'status', id: req.id ?? null, inflight, open, pendingPays, connections, waitingOn });
      return;
    }
    case 'batch': {
      const count = req.count ?? 1;
      const started = performance.now();
      const waits: Array<Promise<unknown>> = [];
      let failures = 0;
      for (let i = 0; i < count; i++) {
        const { ref, done } = pay(req.to!, 100 + i);
        const created = done.then((o) => {
          if (o.status !== 'success') failures++;
        });
        if (req.until === 'settled') {
          waits.push(
            Promise.all([created, new Promise<void>((resolve) => settledWaiters.set(ref, resolve))]),
          );
        } else waits.push(created);
      }
      await Promise.all(waits);
      emit({ t: 'batch', id: req.id ?? null, count, failures, ms: performance.now() - started });
      return;
    }
    case 'rtt': {
      const samples: number[] = [];
      for (let i = 0; i < (req.count ?? 1); i++) {
        const t0 = performance.now();
        const outcome = await pay(req.to!, 1 + i).done;
        samples.push(performance.now() - t0);
        if (outcome.status !== 'success') throw new Error(`create failed: ${outcome.code}`);
      }
      emit({ t: 'rtt', id: req.id ?? null, samples });
      return;
    }
    case 'cpu': {
      const { user, system } = process.cpuUsage();
      emit({ t: 'cpu', id: req.id ?? null, ms: (user + system) / 1000 });
      return;
    }
    case 'exit':
      await shutdown();
      return;
    default:
      emit({ t: 'error', where: 'stdin', message: `unknown op ${req.op}` });
  }
}

let stopping: Promise<void> | undefined;
function shutdown(): Promise<void> {
  stopping ??= (async () => {
    await node.close();
    emit({ t: 'closed' });
    process.exit(0);
  })();
  return stopping;
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());

createInterface({ input: process.stdin }).on('line', (text) => {
  if (text.trim() === '') return;
  let req: Request;
  try {
    req = JSON.parse(text) as Request;
  } catch {
    emit({ t: 'error', where: 'stdin', message: `not JSON: ${text}` });
    return;
  }
  handle(req).catch((err: unknown) => emit({ t: 'error', where: req.op, message: String(err) }));
});

emit({
  t: 'ready',
  url: node.url,
  port: node.port,
  address: node.address,
  epoch: node.epoch,
  pid: process.pid,
});
