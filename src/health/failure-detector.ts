/**
 * The phi accrual failure detector (Hayashibara et al., 2004), as Akka and Cassandra run it:
 * instead of "late or not", a suspicion level `phi = -log10(P(a heartbeat arrives even later))`
 * under a normal model of the inter-arrival times seen so far. `phi = 1` means a 10 % chance the
 * peer is fine, `phi = 8` one in 10^8.
 *
 * Pure: no timers, no clock. The caller reports arrivals with their time and asks for `phi` at
 * a time, or for the time at which `phi` will reach a threshold (to set one timer instead of
 * polling).
 *
 * Like Akka:
 * - the normal CDF is the logistic approximation `1 / (1 + e^(-y(1.5976 + 0.070566 y²)))`;
 * - the standard deviation never goes below `minStdDevMs` (a perfectly regular peer would
 *   otherwise be suspected a few ms after its usual time);
 * - `acceptablePauseMs` is added to the mean: a pause that long (a GC, a busy event loop, a
 *   burst of commands on the same socket) is expected and does not raise phi much;
 * - the history starts with two samples around `firstIntervalEstimateMs`.
 *
 * Unlike Akka, phi is computed in log space, so it stays finite (a long silence gives a large
 * number, never `Infinity`), and the crossing time is solved in closed form.
 */

/** Knobs of the detector. */
export interface PhiDetectorOptions {
  /** Inter-arrival samples kept (a sliding window). @default 200 */
  maxSampleSize?: number;
  /** Floor of the standard deviation, ms. @default 200 */
  minStdDevMs?: number;
  /** Added to the mean interval: a pause this long is expected, ms. @default 1000 */
  acceptablePauseMs?: number;
  /** Seed of the history, ms (usually the heartbeat interval). @default 1000 */
  firstIntervalEstimateMs?: number;
}

/** Default of {@link PhiDetectorOptions.maxSampleSize}. */
export const DEFAULT_MAX_SAMPLE_SIZE = 200;
/** Default of {@link PhiDetectorOptions.minStdDevMs}. */
export const DEFAULT_MIN_STD_DEV_MS = 200;
/** Default of {@link PhiDetectorOptions.acceptablePauseMs}. */
export const DEFAULT_ACCEPTABLE_PAUSE_MS = 1000;

/** A phi accrual failure detector for one peer. */
export interface PhiDetector {
  /**
   * A heartbeat arrived at `nowMs`. The interval since the previous arrival becomes a sample,
   * unless `sample` is false (the first heartbeat of a new connection, or the end of an outage:
   * such a gap says nothing about the arrival process).
   */
  heartbeat(nowMs: number, sample?: boolean): void;
  /** The suspicion level at `nowMs` (0 before any arrival). Never negative, never `Infinity`. */
  phi(nowMs: number): number;
  /**
   * The time at which `phi` reaches `threshold` if nothing arrives (`Infinity` before any
   * arrival). @throws RangeError unless `threshold > 0`
   */
  deadline(threshold: number): number;
  /** Time of the last arrival, if any. */
  readonly lastArrivalMs: number | undefined;
  /** Mean of the sampled intervals, ms (without the acceptable pause). */
  readonly meanMs: number;
  /** Standard deviation used (at least `minStdDevMs`), ms. */
  readonly stdDevMs: number;
  /** Samples in the window. */
  readonly samples: number;
}

const A = 1.5976;
const B = 0.070566;

/** log(1 + e^x) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * phi for a time `elapsedMs` after the last arrival, under a normal model with `meanMs` and
 * `stdDevMs`: `-log10(1 - F(elapsed))` with the logistic approximation of F, i.e.
 * `softplus(y(A + B y²)) / ln 10` with `y = (elapsed - mean) / std`.
 */
export function phiOf(elapsedMs: number, meanMs: number, stdDevMs: number): number {
  const y = (elapsedMs - meanMs) / stdDevMs;
  return softplus(y * (A + B * y * y)) / Math.LN10;
}

/**
 * The `elapsedMs` at which {@link phiOf} reaches `phi` (its inverse): solves
 * `B y³ + A y = log(10^phi - 1)` (one real root, Cardano).
 */
export function elapsedForPhi(phi: number, meanMs: number, stdDevMs: number): number {
  // log(10^phi - 1), stable for small and large phi.
  const z = phi * Math.LN10 + Math.log1p(-(10 ** -phi));
  const p = A / B;
  const q = z / B;
  const root = Math.sqrt((q * q) / 4 + (p * p * p) / 27);
  const y = Math.cbrt(q / 2 + root) + Math.cbrt(q / 2 - root);
  return meanMs + y * stdDevMs;
}

/** Creates a detector with the options' defaults filled in. */
export function createPhiDetector(options: PhiDetectorOptions = {}): PhiDetector {
  const maxSamples = options.maxSampleSize ?? DEFAULT_MAX_SAMPLE_SIZE;
  const minStdDev = options.minStdDevMs ?? DEFAULT_MIN_STD_DEV_MS;
  const pause = options.acceptablePauseMs ?? DEFAULT_ACCEPTABLE_PAUSE_MS;
  const first = options.firstIntervalEstimateMs ?? 1000;
  if (!(maxSamples >= 2 && minStdDev > 0 && pause >= 0 && first > 0)) {
    throw new RangeError('phi detector: maxSampleSize >= 2, minStdDevMs > 0, acceptablePauseMs >= 0');
  }

  const window = new Float64Array(maxSamples);
  let head = 0;
  let size = 0;
  let sum = 0;
  let sumSq = 0;
  let last: number | undefined;

  function push(interval: number): void {
    if (size === maxSamples) {
      const old = window[head]!;
      sum -= old;
      sumSq -= old * old;
    } else size++;
    window[head] = interval;
    head = (head + 1) % maxSamples;
    sum += interval;
    sumSq += interval * interval;
  }
  // Akka's seed: two samples one quarter of the estimate either side of it.
  push(first - first / 4);
  push(first + first / 4);

  const mean = (): number => sum / size;
  const std = (): number => Math.max(minStdDev, Math.sqrt(Math.max(0, sumSq / size - mean() ** 2)));

  return {
    heartbeat(nowMs, sample = true) {
      if (last !== undefined && sample && nowMs >= last) push(nowMs - last);
      last = nowMs;
    },
    phi(nowMs) {
      if (last === undefined) return 0;
      return phiOf(nowMs - last, mean() + pause, std());
    },
    deadline(threshold) {
      if (!(threshold > 0)) throw new RangeError('phi threshold must be > 0');
      if (last === undefined) return Number.POSITIVE_INFINITY;
      return last + elapsedForPhi(threshold, mean() + pause, std());
    },
    get lastArrivalMs() {
      return last;
    },
    get meanMs() {
      return mean();
    },
    get stdDevMs() {
      return std();
    },
    get samples() {
      return size;
    },
  };
}
