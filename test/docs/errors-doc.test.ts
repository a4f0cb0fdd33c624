/**
 * docs/errors.md and the catalog in src/errors.ts name the same codes, both ways: a code added
 * to the catalog needs a line in the docs, and the docs name no code the catalog lacks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { repoRoot } from '../cli/helpers.js';

/** The codes in the first column of the docs' tables (a row may name several). */
function documentedCodes(): Set<string> {
  const text = readFileSync(join(repoRoot, 'docs/errors.md'), 'utf8');
  const codes = new Set<string>();
  for (const line of text.split('\n')) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1];
    if (first === undefined) continue;
    for (const m of first.matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)`/g)) codes.add(m[1]!);
  }
  return codes;
}

describe('docs/errors.md', () => {
  const documented = documentedCodes();
  const catalog = Object.keys(ErrorCode);

  it('documents every code of the catalog', () => {
    expect(catalog.filter((code) => !documented.has(code))).toEqual([]);
  });

  it('documents no code that the catalog lacks', () => {
    expect([...documented].filter((code) => !catalog.includes(code))).toEqual([]);
  });
});
