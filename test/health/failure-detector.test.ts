import { describe, expect, it } from 'vitest';
import { createPhiDetector, elapsedForPhi, phiOf } from '../../src/health/failure-detector.js';
import { DEFAULT_HEALTH_OPTIONS, resolveHealthOptions } from '../../src/health/options.js';

/** Akka's formula, for comparison (phi accrual, logistic approximation of the normal CDF). */
function akkaPhi(elapsed: number, mean: number, std: number): number {
  const y = (elapsed - mean) / std;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  return elapsed > mean ? -Math.log10(e / (1 + e)) : -Math.log10(1 - 1 / (1 + e));
}

/** A detector fed `n` heartbeats exactly `intervalMs` apart; returns it and the last arrival. */
function regular(n: number, intervalMs = 1000, options = {}) {
  const d = createPhiDetector(options);
  for (let i = 0; i < n; i++) d.heartbeat(i * intervalMs);
  return { d, last: (n - 1) * intervalMs };
}

describe('phi accrual failure detector', () => {
  it('computes the same phi as Akka where Akka is finite, and stays finite beyond', () => {
    for (const elapsed of [0, 500, 1000, 1800, 2000, 2300, 2700, 3000, 3400]) {
      expect(phiOf(elapsed, 2000, 200)).toBeCloseTo(akkaPhi(elapsed, 2000, 200), 6);
    }
    expect(Number.isFinite(phiOf(1e9, 2000, 200))).toBe(true);
    expect(phiOf(1e9, 2000, 200)).toBeGreaterThan(1e6);
  });

  it('inverts phi exactly: elapsedForPhi(phi) gives back phi', () => {
    for (const phi of [0.05, 0.3, 1, 2, 3, 8, 12, 30]) {
      expect(phiOf(elapsedForPhi(phi, 1500, 120), 1500, 120)).toBeCloseTo(phi, 9);
    }
  });

  it('is 0 before any heartbeat and never negative', () => {
    const d = createPhiDetector();
    expect(d.phi(123)).toBe(0);
    expect(d.deadline(8)).toBe(Number.POSITIVE_INFINITY);
    d.heartbeat(0);
    expect(d.phi(0)).toBeGreaterThanOrEqual(0);
  });

  it('grows monotonically with silence', () => {
    const { d, last } = regular(30);
    let previous = -1;
    for (let t = last; t < last + 6000; t += 50) {
      const phi = d.phi(t);
      expect(phi).toBeGreaterThanOrEqual(previous);
      previous = phi;
    }
  });

  it('with the defaults, a regular 1 s peer is suspect after ~2.26 s and down after ~3.05 s of silence', () => {
    const { d, last } = regular(60, 1000, {
      minStdDevMs: DEFAULT_HEALTH_OPTIONS.minStdDevMs,
      acceptablePauseMs: DEFAULT_HEALTH_OPTIONS.acceptablePauseMs,
    });
    expect(d.stdDevMs).toBe(200); // the floor: real jitter is below it
    expect(d.deadline(DEFAULT_HEALTH_OPTIONS.suspectPhi) - last).toBeCloseTo(2256, -1);
    expect(d.deadline(DEFAULT_HEALTH_OPTIONS.downPhi) - last).toBeCloseTo(3045, -1);
    expect(d.phi(last + 2000)).toBeLessThan(1); // a heartbeat 1 s late raises no suspicion
  });

  it('widens the deadline for a jittery peer (std-dev above the floor)', () => {
    const d = createPhiDetector({ minStdDevMs: 10, acceptablePauseMs: 0 });
    for (let i = 0, t = 0; i < 100; i++) {
      d.heartbeat(t);
      t += i % 2 === 0 ? 600 : 1400;
    }
    expect(d.meanMs).toBeCloseTo(1000, -1);
    expect(d.stdDevMs).toBeGreaterThan(350);
    const regularDetector = regular(100, 1000, { minStdDevMs: 10, acceptablePauseMs: 0 }).d;
    expect(d.deadline(8) - (d.lastArrivalMs ?? 0)).toBeGreaterThan(
      regularDetector.deadline(8) - (regularDetector.lastArrivalMs ?? 0) + 1000,
    );
  });

  it('keeps only maxSampleSize samples: the old rhythm is forgotten', () => {
    const d = createPhiDetector({ maxSampleSize: 10, minStdDevMs: 1, acceptablePauseMs: 0 });
    // 11 arrivals 5 s apart: 10 intervals push the 2 seeds out of the window.
    for (let i = 0; i <= 10; i++) d.heartbeat(i * 5000);
    expect(d.meanMs).toBeCloseTo(5000, 0);
    for (let i = 1; i <= 10; i++) d.heartbeat(50_000 + i * 100);
    expect(d.meanMs).toBeCloseTo(100, 0);
    expect(d.samples).toBe(10);
  });

  it('does not sample a gap reported with sample=false (a reconnect, the end of an outage)', () => {
    const { d, last } = regular(20);
    const before = { mean: d.meanMs, samples: d.samples };
    d.heartbeat(last + 60_000, false);
    expect(d.meanMs).toBe(before.mean);
    expect(d.samples).toBe(before.samples);
    expect(d.lastArrivalMs).toBe(last + 60_000);
  });

  it('refuses nonsense options and thresholds', () => {
    expect(() => createPhiDetector({ maxSampleSize: 1 })).toThrow(RangeError);
    expect(() => createPhiDetector({ minStdDevMs: 0 })).toThrow(RangeError);
    expect(() => regular(3).d.deadline(0)).toThrow(RangeError);
    expect(() => resolveHealthOptions({ downPhi: 0.5, suspectPhi: 1 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => resolveHealthOptions({ heartbeatIntervalMs: 0 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(resolveHealthOptions({ heartbeatIntervalMs: 250 }).heartbeatIntervalMs).toBe(250);
  });
});
