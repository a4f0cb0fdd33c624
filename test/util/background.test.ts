/** The named forms of a promise nobody awaits (src/util/background.ts). */
import { expect, it } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import { background, observed, settled } from '../../src/util/background.js';

it('background reports a failure with its task and peer, and never rejects', async () => {
  const reports: unknown[] = [];
  const failure = new ParleyError('STORE_UNAVAILABLE', 'disk full');
  await background(
    Promise.reject(failure),
    'recover',
    (task, error, peer) => reports.push({ task, error, peer }),
    'p1',
  );
  await background(Promise.resolve(1), 'recover', (task) => reports.push(task));
  expect(reports).toEqual([{ task: 'recover', error: failure, peer: 'p1' }]);
});

it('observed leaves the rejection to whoever awaits the promise; settled waits either way', async () => {
  const failing = Promise.reject(new Error('late'));
  observed(failing);
  await expect(failing).rejects.toThrow('late');
  await expect(settled(Promise.reject(new Error('x')))).resolves.toBeUndefined();
  await expect(settled(Promise.resolve(2))).resolves.toBeUndefined();
});
