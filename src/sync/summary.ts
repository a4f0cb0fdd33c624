/**
 * The open-object summary of a channel, `{count, digest}`, announced in the hello (and the
 * heartbeat) and compared at the start of a resync run: equal summaries mean equal sets of
 * `(reference_id, head version)`, and the run ends after one exchange.
 *
 * `digest` is SHA-256 over `reference_id "\n" head "\n"` for every open object in byte order of
 * `reference_id`, lowercase hex. It is computed page by page: memory stays bounded at any set size.
 */
import { createHash } from 'node:crypto';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import type { SyncStore } from './ports.js';

/** Default page size of summary scans and list pages. */
export const DEFAULT_SYNC_PAGE_SIZE = 1000;

/** The `{count, digest}` summary of the objects open with `peer`. */
export async function openObjectsSummary(
  store: Pick<SyncStore, 'openObjects'>,
  peer: string,
  pageSize = DEFAULT_SYNC_PAGE_SIZE,
): Promise<OpenObjectsSummary> {
  const hash = createHash('sha256');
  let count = 0;
  let after: string | null = null;
  for (;;) {
    const page = await store.openObjects(peer, after, pageSize);
    for (const head of page) hash.update(`${head.referenceId}\n${head.headVersion}\n`);
    count += page.length;
    if (page.length < pageSize) break;
    after = page[page.length - 1]!.referenceId;
  }
  return { count, digest: hash.digest('hex') };
}

/** Whether two summaries name the same set (a summary without a digest only matches when both are empty). */
export function sameSummary(a: OpenObjectsSummary, b: OpenObjectsSummary): boolean {
  return a.count === b.count && a.digest === b.digest && (a.digest !== '' || a.count === 0);
}

/** Byte order of two reference ids, as the store orders them (UTF-8 bytes). */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
