/**
 * Deep equality of plain JSON values (what `JSON.parse` and the zod schemas produce).
 *
 * Object key order does not matter and a member whose value is `undefined` counts as absent,
 * as in JSON text. Recursion depth is that of the values: decoded frames are bounded by
 * `MAX_JSON_DEPTH` (`codec.ts`).
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      if (!jsonEqual(a[i], b[i])) return false;
    }
    return true;
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  let leftCount = 0;
  for (const key of Object.keys(left)) {
    if (left[key] === undefined) continue;
    leftCount++;
    if (!Object.hasOwn(right, key) || !jsonEqual(left[key], right[key])) return false;
  }
  let rightCount = 0;
  for (const key of Object.keys(right)) {
    if (right[key] !== undefined) rightCount++;
  }
  return leftCount === rightCount;
}
