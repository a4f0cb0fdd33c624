/**
 * Strict configuration sections: every object of the configuration refuses keys it does not
 * know, naming the closest known key when one is near (a typo), so a misspelt setting never
 * silently falls back to its default.
 */
import { z } from 'zod';

/** Edit distance (insertions, deletions, substitutions), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (s[i - 1] === t[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[t.length]!;
}

/**
 * The known key closest to `key`, when it is near: at most 2 edits, or a third of the longer
 * name (`pubkey` → `publicKey`).
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(key, name);
    const near = distance <= Math.max(2, Math.floor(Math.max(key.length, name.length) / 3));
    if (near && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** The message for unknown `keys` of an object whose known keys are `known`. */
export function unknownKeysMessage(keys: readonly string[], known: readonly string[]): string {
  const each = keys.map((key) => {
    const hint = closestKey(key, known);
    return `${JSON.stringify(key)}${hint !== undefined ? ` (did you mean ${JSON.stringify(hint)}?)` : ''}`;
  });
  const hinted = keys.every((key) => closestKey(key, known) !== undefined);
  return `unknown key${keys.length > 1 ? 's' : ''} ${each.join(', ')}${hinted ? '' : ` (known keys: ${known.join(', ')})`}`;
}

/**
 * A configuration section: an object schema that refuses unknown keys with a "did you mean"
 * hint. To add a setting, add its key to the section's shape; nothing else.
 */
export function section<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, known) : undefined,
  });
}
