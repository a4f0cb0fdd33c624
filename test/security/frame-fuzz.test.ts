/**
 * A bounded, seeded mutation fuzz of signed LIP-1 command frames on both transports (issue 17,
 * permanent suite): 5,000 frames (bit flips, truncation, duplicated segments, splices, garbage,
 * JSON-level mutations re-signed by the authenticated peer or not, deep nesting, wrong types).
 * Every frame gets an answer or a documented close, the node stays up, nothing rejects
 * unhandled, and no guarded row is written but by a frame that verifies. `npm run fuzz` runs the
 * same fuzz longer (scripts/fuzz/).
 */
import { describe, expect, it } from 'vitest';
import { runFuzz } from '../../scripts/fuzz/drive.js';

const SEED = 0x17f022;

describe('frame fuzz', () => {
  it(`answers 5,000 mutated frames over ws and LIP-1 HTTP and writes nothing for them (seed ${SEED})`, async () => {
    const summary = await runFuzz({ frames: 5_000, seed: SEED });
    console.log(JSON.stringify(summary));
    expect(summary.violations).toEqual([]);
    expect(summary.ws.sent + summary.http.sent).toBeGreaterThanOrEqual(5_000);
    expect(summary.ws.answered + summary.ws.silent).toBeGreaterThanOrEqual(summary.ws.sent);
    // The fuzz reached the verified path too (re-signed mutants), not only the signature check.
    expect(summary.verified).toBeGreaterThan(500);
  }, 120_000);
});
