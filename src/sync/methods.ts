/**
 * Reconciliation methods (PROTOCOL.md §7.3): how the leader of a run finds the objects whose
 * heads differ, once the two summaries differ. `list` pages through the follower's open objects
 * and merges them with this node's; `scoped` asks for each named object; `riblt` peels coded
 * symbols (`riblt-method.ts`).
 */
import type {
  SyncBegin,
  SyncBeginAck,
  SyncEntry,
  SyncList,
  SyncMethod,
  SyncObject,
} from '../protocol/sync-frames.js';
import { observed } from '../util/background.js';
import type { SyncContext } from './context.js';
import {
  checkedPage,
  type Difference,
  type ListPage,
  localCursor,
  mergeDifferences,
  remoteCursor,
} from './differences.js';
import type { RunState } from './run-record.js';
import { compareIds } from './summary.js';

/** One way of finding the differences of a run, from the leader's side. */
export interface ReconcileMethod {
  readonly name: SyncMethod;
  /** What the `SyncBegin` says beyond its method and the summary. */
  begin(): Pick<SyncBegin, 'reference_ids'>;
  /** The differences, in byte order of reference id, once the follower answered the begin with `ack`. */
  differences(run: RunState, ack: SyncBeginAck): AsyncGenerator<Difference>;
}

/** The follower's open objects page by page, merged with this node's. */
export function listMethod(ctx: SyncContext): ReconcileMethod {
  const { pageSize } = ctx.limits;
  return {
    name: 'list',
    begin: () => ({}),
    differences(run) {
      const fetchPage = (after: string | null): Promise<ListPage> => {
        const page = ctx.correlator
          .ask<SyncList>(
            { kind: 'list', runId: run.runId },
            { _ObjectType: 'SyncListRequest', run_id: run.runId, after, limit: pageSize },
            run.counters,
          )
          .then((answer) => checkedPage(answer, after, pageSize));
        // A prefetched page is awaited only when the merge reaches it: a run that stops first
        // (the link closed, a batch failed) never awaits it, and its rejection must not go
        // unhandled (that ends the process). Whoever awaits it still gets the rejection.
        observed(page);
        return page;
      };
      const local = localCursor((after, limit) => ctx.store.openObjects(ctx.peer, after, limit), pageSize);
      return mergeDifferences(remoteCursor(fetchPage), local);
    },
  };
}

/** The named objects only, each asked for (`SyncGetObject`) and compared with this node's head. */
export function scopedMethod(ctx: SyncContext, scope: ReadonlySet<string>): ReconcileMethod {
  return {
    name: 'scoped',
    begin: () => ({ reference_ids: [...scope] }),
    async *differences(run) {
      for (const ref of [...scope].sort(compareIds)) {
        const id = `${run.runId.slice(0, 16)}-${ctx.nextSeq()}`;
        const o = await ctx.correlator.ask<SyncObject>(
          { kind: 'object', requestId: id },
          { _ObjectType: 'SyncGetObject', request_id: id, reference_id: ref },
          run.counters,
        );
        const local = (await ctx.store.heads(ctx.peer, [ref])).get(ref);
        if (o.found && local?.headVersion === o.head) continue;
        if (!o.found && !local) continue;
        const remote: SyncEntry | undefined = o.found
          ? { reference_id: ref, head: o.head!, version_count: o.version_count }
          : undefined;
        yield remote ? { ref, remote } : { ref };
      }
    },
  };
}
