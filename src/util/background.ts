/**
 * The one place where a promise's rejection is not passed on to whoever made it. Every promise
 * in src/ is awaited, returned, or given to one of these (`npm run structure` refuses a catch
 * that drops the error on the spot):
 *
 * - {@link background}: work nobody awaits; its failure is reported (the node emits
 *   `background_failed`, logged at warn), never lost and never an unhandled rejection.
 * - {@link observed}: a promise whose rejection is handled elsewhere (the same promise is awaited
 *   later, or its failure is already reported on another path); marked here so that a rejection
 *   before that point does not end the process as "unhandled".
 * - {@link settled}: waiting for something to end, either way, when its outcome is handled
 *   elsewhere.
 *
 * A leaf module (it imports nothing), so any part may use it.
 */

/**
 * Where a background task's failure goes: `task` says what was being done (snake_case),
 * `peer` the channel it was for, if any.
 */
export type ReportFailure = (task: string, error: unknown, peer?: string) => void;

/**
 * Runs `promise` in the background: a rejection goes to `report`. The returned promise resolves
 * when `promise` settles, and never rejects.
 */
export function background(
  promise: Promise<unknown>,
  task: string,
  report: ReportFailure,
  peer?: string,
): Promise<void> {
  return promise.then(
    () => undefined,
    (error: unknown) => report(task, error, peer),
  );
}

/**
 * The reporter of a part made without one (unit tests build parts bare): failures go nowhere.
 * The node always wires its own (`background_failed`).
 */
export const unreported: ReportFailure = () => undefined;

/** Marks `promise` as observed: its rejection is handled elsewhere (see the comment at the call). */
export function observed(promise: Promise<unknown>): void {
  promise.then(undefined, () => undefined);
}

/** Resolves once `promise` settles, either way (its outcome is handled elsewhere); never rejects. */
export function settled(promise: Promise<unknown>): Promise<void> {
  return promise.then(
    () => undefined,
    () => undefined,
  );
}
