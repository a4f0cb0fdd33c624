/**
 * What applying histories did, counted into the run and reported as events: objects rebuilt,
 * histories rejected, forks lost here and won at the peer, differences left without an outcome.
 */
import type { Subject } from 'rxjs';
import type { ApplyOutcome, ApplyResult } from '../protocol/sync-frames.js';
import type { AppliedBatch, ForkResolution } from './apply.js';
import type { RunState } from './run-record.js';
import type { ResyncEvent } from './types.js';

export interface RunReporter {
  /** Histories applied here (fetched, or pushed by the peer). */
  applied(batch: AppliedBatch, runId: string | null, run?: RunState): void;
  /** The peer's results for a push of this node's run. */
  pushed(run: RunState, results: readonly ApplyResult[]): void;
}

export function tally(run: RunState, outcome: ApplyOutcome): void {
  run.results[outcome] = (run.results[outcome] ?? 0) + 1;
}

/** Records the objects of `sent` (pushed or asked for) that no result in `results` names. */
export function unsettledOf(
  run: RunState,
  sent: ReadonlyArray<{ reference_id: string }>,
  results: ReadonlyArray<{ reference_id: string }>,
): void {
  const settledRefs = new Set(results.map((r) => r.reference_id));
  for (const o of sent) if (!settledRefs.has(o.reference_id)) run.unsettled.push(o.reference_id);
}

export function createRunReporter(peer: string, events: Subject<ResyncEvent>): RunReporter {
  function reportFork(f: ForkResolution, run?: RunState): void {
    events.next({
      type: 'fork_lost',
      peer,
      referenceId: f.referenceId,
      keep: f.keep,
      droppedCids: f.dropped.map((d) => d.cid),
      droppedPending: f.droppedOutbox.map((o) => o.cid),
    });
    // The losing branch stays on record: its signed entries go into the run's detail.
    run?.forks.push({
      referenceId: f.referenceId,
      keep: f.keep,
      dropped: f.dropped.map((d) => `${d.requestJws} ${d.responseJws}`),
    });
  }

  return {
    applied(batch, runId, run) {
      // A restore's objects are restore progress, not rebuilt objects (PROTOCOL.md §7.6).
      for (const s of run?.method === 'restore' ? [] : batch.stored) {
        events.next({ type: 'object_rebuilt', peer, referenceId: s.referenceId, from: s.from, head: s.head });
      }
      for (const r of batch.results) {
        if (r.outcome === 'rejected') {
          const code = r.code ?? 'SYNC_INVALID_HISTORY';
          events.next({ type: 'history_rejected', peer, referenceId: r.reference_id, code, runId });
          run?.rejected.push({ referenceId: r.reference_id, code });
        }
      }
      for (const f of batch.forks) reportFork(f, run);
      if (run) {
        run.counters.objectsReceived += batch.stored.length;
        for (const r of batch.results) tally(run, r.outcome);
      }
    },
    pushed(run, results) {
      for (const r of results) {
        tally(run, r.outcome);
        if (r.outcome === 'rejected')
          run.rejected.push({ referenceId: r.reference_id, code: r.code ?? 'SYNC_INVALID_HISTORY' });
        else if (r.outcome === 'replaced')
          events.next({ type: 'fork_won', peer, referenceId: r.reference_id });
      }
    },
  };
}
