/**
 * Steady payments through the nodes' admin route (`POST /admin/pay`), from random running
 * nodes to random peers. Every acknowledgement is recorded: a `202 {referenceId}` (or, with
 * `?wait=1`, a `200` with the final outcome) says the payment was accepted, so the invariant
 * checker demands it later.
 */
import { request } from 'node:http';
import type { ChaosNode, Cluster } from './cluster.js';
import type { Rng } from './rng.js';

/** A payment a node acknowledged. */
export interface AckedPayment {
  ref: string;
  /** Node names. */
  from: string;
  to: string;
  /** Wall-clock ms of the acknowledgement. */
  at: number;
  /** Acknowledged by `?wait=1` (200, final outcome) rather than 202. */
  wait: boolean;
}

export interface LoadCounts {
  requested: number;
  /** 202 answers (without wait; or with it, for a stored create whose channel closed). */
  accepted: number;
  /** 200 answers to `?wait=1`. */
  completed: number;
  /** Any other HTTP answer (the payment was refused, or its outcome is unknown). */
  refused: number;
  /** No answer: the connection failed or was reset (a killed node), or timed out. */
  unanswered: number;
  /** Ticks skipped because too many requests were pending, or no node was up. */
  skipped: number;
}

export interface Load {
  readonly acked: readonly AckedPayment[];
  readonly counts: LoadCounts;
  /**
   * Sends `count` payments from `from` at once (to random peers, without wait) and resolves
   * when each has its answer: the moment to SIGKILL it, with every acknowledgement just given.
   */
  burst(from: ChaosNode, count: number): Promise<void>;
  /** Stops starting payments; resolves when every pending request has its answer. */
  stop(): Promise<void>;
}

export interface LoadOptions {
  /** Payments per second, over all nodes. */
  rate: number;
  /** Share of payments sent with `?wait=1`. */
  waitShare: number;
  /** Most requests pending at once. @default 64 */
  maxPending?: number;
  /** Give up on one request after this long. @default 30000 */
  timeoutMs?: number;
}

interface Answer {
  status: number;
  body: { referenceId?: string } | null;
}

function post(node: ChaosNode, path: string, body: unknown, timeoutMs: number): Promise<Answer> {
  const admin = node.admin;
  if (!admin) return Promise.reject(new Error(`${node.name} is down`));
  const payload = JSON.stringify(body);
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      new URL(path, admin.url),
      {
        method: 'POST',
        timeout: timeoutMs,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          authorization: `Bearer ${admin.token}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          let parsed: Answer['body'] = null;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer['body'];
          } catch {
            // not JSON: counted as refused below
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

export function startLoad(cluster: Cluster, rng: Rng, options: LoadOptions): Load {
  const acked: AckedPayment[] = [];
  const counts: LoadCounts = {
    requested: 0,
    accepted: 0,
    completed: 0,
    refused: 0,
    unanswered: 0,
    skipped: 0,
  };
  const pending = new Set<Promise<void>>();
  const maxPending = options.maxPending ?? 64;
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function pay(from: ChaosNode, to: ChaosNode, wait: boolean): Promise<void> {
    counts.requested += 1;
    const body = {
      to: to.address,
      amount: 1 + Math.floor(rng() * 99_999),
      currency: 'XUS',
      description: `chaos ${from.name} → ${to.name}`,
    };
    let answer: Answer;
    try {
      answer = await post(from, wait ? '/admin/pay?wait=1' : '/admin/pay', body, timeoutMs);
    } catch {
      counts.unanswered += 1;
      return;
    }
    const ref = answer.body?.referenceId;
    // With ?wait=1, a 202 says the create is stored but its channel closed before the outcome.
    const ok = answer.status === 202 || (wait && answer.status === 200);
    if (!ok || typeof ref !== 'string') {
      counts.refused += 1;
      return;
    }
    if (answer.status === 200) counts.completed += 1;
    else counts.accepted += 1;
    acked.push({ ref, from: from.name, to: to.name, at: Date.now(), wait });
  }

  const tick = (): void => {
    const up = cluster.nodes.filter((n) => cluster.running(n));
    if (up.length === 0 || pending.size >= maxPending) {
      counts.skipped += 1;
      return;
    }
    const from = up[Math.floor(rng() * up.length)]!;
    const others = cluster.nodes.filter((n) => n !== from);
    const to = others[Math.floor(rng() * others.length)]!;
    const sent = pay(from, to, rng() < options.waitShare);
    pending.add(sent);
    void sent.finally(() => pending.delete(sent));
  };
  const timer = setInterval(tick, Math.max(1, Math.round(1000 / options.rate)));

  return {
    acked,
    counts,
    async burst(from, count) {
      const others = cluster.nodes.filter((n) => n !== from);
      const sends = Array.from({ length: count }, () =>
        pay(from, others[Math.floor(rng() * others.length)]!, false),
      );
      await Promise.all(sends);
    },
    async stop() {
      clearInterval(timer);
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
