/**
 * `GET /admin/events`: the back-office events as Server-Sent Events (docs/backoffice.md,
 * "Events"), for consumers that prefer a pull. Same guard as the other admin routes (clients on
 * this machine, and the run's token when set).
 *
 * Each event is `id: <sequence>`, `event: <type>`, `data: <the webhook body>`. A consumer that
 * reconnects with `Last-Event-ID` (or `?after=<sequence>`) first gets every event it missed that
 * is still kept (`events.retentionMs` after delivery), then the live ones, each once and in order.
 * A comment line every 15 s keeps proxies from closing an idle stream.
 * 404 `EVENTS_DISABLED` when the node does not record events (`events.enabled` / `events.url`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventBody, EventDelivery } from '../events/index.js';
import { sendJson } from '../http/router.js';

const KEEPALIVE_MS = 15_000;
const PAGE = 500;

function resumeFrom(req: IncomingMessage, url: URL): number | null | undefined {
  const text = url.searchParams.get('after') ?? req.headers['last-event-id'];
  if (text === undefined || text === null) return null;
  const value = Array.isArray(text) ? text[0] : text;
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

/**
 * Answers `GET /admin/events` once the caller was admitted (`routes.ts`): 404 without a feed,
 * 400 for an `after` / `Last-Event-ID` that is not a sequence, else the stream.
 */
export async function streamEvents(
  feed: EventDelivery | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<true> {
  req.resume();
  if (!feed) {
    return sendJson(res, 404, {
      error: 'EVENTS_DISABLED',
      message: 'this node records no events (config events.enabled or events.url)',
    });
  }
  const after = resumeFrom(req, url);
  if (after === undefined) {
    return sendJson(res, 400, {
      error: 'HTTP_INVALID_QUERY',
      message: 'after / Last-Event-ID: expected a sequence',
    });
  }
  await stream(feed, after, res);
  return true;
}

async function stream(feed: EventDelivery, after: number | null, res: ServerResponse): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  res.write(': parley events\n\n');
  let last = after;
  let replaying = true;
  const held: EventBody[] = [];
  const send = (e: EventBody): void => {
    if (last !== null && e.sequence <= last) return;
    last = e.sequence;
    res.write(`id: ${e.sequence}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
  };
  const sub = feed.events$.subscribe({
    next: (e) => (replaying ? held.push(e) : send(e)),
    complete: () => res.end(),
  });
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  res.once('close', () => {
    sub.unsubscribe();
    clearInterval(keepalive);
  });
  try {
    for (let from = after; from !== null; ) {
      const page = await feed.after(from, PAGE);
      for (const e of page) send(e);
      from = page.length === PAGE ? page.at(-1)!.sequence : null;
    }
  } catch {
    res.end(); // the store failed: the consumer reconnects with its Last-Event-ID
    return;
  }
  replaying = false;
  for (const e of held.splice(0)) send(e);
}
