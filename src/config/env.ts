/**
 * Reading settings from the environment and the key seed from a file.
 */
import { readFileSync } from 'node:fs';

/** The key seed in `file`: 32 bytes as 64 hex characters, whitespace around them ignored. */
export function readSeedFile(file: string): { ok: true; seed: string } | { ok: false; problem: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { ok: false, problem: `cannot read ${file} (${code})` };
  }
  const seed = text.trim();
  return /^[0-9a-f]{64}$/.test(seed)
    ? { ok: true, seed }
    : { ok: false, problem: `${file}: expected 32 bytes as 64 lowercase hex characters` };
}

/** `input` with `value` at `path` (objects on the way copied, or made). */
export function setPath(input: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let parent = input;
  for (const key of path.slice(0, -1)) {
    const child = parent[key];
    const copy =
      typeof child === 'object' && child !== null && !Array.isArray(child)
        ? { ...(child as Record<string, unknown>) }
        : {};
    parent[key] = copy;
    parent = copy;
  }
  parent[path.at(-1)!] = value;
}
