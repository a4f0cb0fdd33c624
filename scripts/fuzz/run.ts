/**
 * `npm run fuzz -- [--frames N] [--seed S]`: the seeded frame fuzz of
 * test/security/frame-fuzz.test.ts, longer (default 100,000 frames, half per transport).
 * Prints one JSON line (the summary); exits 1 on a violation. `FUZZ_DEBUG=1` sends the WebSocket
 * frames one at a time and prints each one left unanswered.
 */
import { parseArgs } from 'node:util';
import { runFuzz } from './drive.js';

const { values } = parseArgs({
  options: { frames: { type: 'string', default: '100000' }, seed: { type: 'string', default: '1568802' } },
});
const frames = Number(values.frames);
const seed = Number(values.seed);
if (!Number.isSafeInteger(frames) || frames < 1 || !Number.isSafeInteger(seed)) {
  process.stderr.write('usage: npm run fuzz -- [--frames N] [--seed S]\n');
  process.exit(2);
}
process.stderr.write(`fuzz: seed ${seed}, ${frames} frames\n`);
const summary = await runFuzz({ frames, seed });
const { violations, ...rest } = summary;
process.stdout.write(
  `${JSON.stringify({ ...rest, violations: violations.length, first: violations.slice(0, 5) })}\n`,
);
process.exit(violations.length === 0 ? 0 : 1);
