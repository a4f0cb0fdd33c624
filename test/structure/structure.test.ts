/**
 * The structure rules that `npm run lint` enforces: the dependency rule between the parts of src/
 * (scripts/check/layers.mjs) and the function-size rule (scripts/check/function-size.mjs). Each
 * holds on this checkout, and each fails on a small tree made to break it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error: plain ESM scripts without declarations
import * as sizes from '../../scripts/check/function-size.mjs';
// @ts-expect-error: plain ESM scripts without declarations
import * as layers from '../../scripts/check/layers.mjs';
// @ts-expect-error: plain ESM scripts without declarations
import * as swallowed from '../../scripts/check/swallowed.mjs';
import { repoRoot } from '../cli/helpers.js';

const checkLayers = layers.check as (root: string) => string[];
const checkSwallowed = swallowed.check as (root: string) => string[];
const checkSizes = sizes.check as (
  root: string,
  allowed?: Record<string, { lines: number; why: string }>,
  maxLines?: number,
) => string[];

const trees: string[] = [];
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'parley-structure-'));
  trees.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}
afterEach(() => {
  for (const root of trees.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe('the dependency rule', () => {
  it('holds on this checkout', () => {
    expect(checkLayers(repoRoot)).toEqual([]);
  });

  it('fails on a pure part importing the store, an I/O package or node:fs', () => {
    const root = tree({
      'src/protocol/frame.ts': [
        "import { openStore } from '../store/open-store.js';",
        "import WebSocket from 'ws';",
        "import { readFileSync } from 'node:fs';",
        'export const x = [openStore, WebSocket, readFileSync];',
      ].join('\n'),
      'src/store/open-store.ts': 'export const openStore = 1;\n',
    });
    const problems = checkLayers(root);
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/"protocol" may not import "store"/);
    expect(problems.join('\n')).toMatch(/only transport may import ws/);
    expect(problems.join('\n')).toMatch(/"protocol" is pure and may not import node:fs/);
  });

  it('fails on the store importing channel logic, and lets any part import a ports file', () => {
    const root = tree({
      'src/store/repo.ts': [
        "import type { Channel } from '../channel/channel.js';",
        "import { KINDS } from '../health/ports.js';",
        'export type X = Channel | typeof KINDS;',
      ].join('\n'),
    });
    expect(checkLayers(root)).toEqual([
      'src/store/repo.ts: "store" may not import "channel" (../channel/channel.js)',
    ]);
  });

  it('lets the error catalog import the close codes (a leaf), and nothing else of the protocol', () => {
    const root = tree({
      'src/errors.ts': [
        "import { CloseCode } from './protocol/close-codes.js';",
        "import { decode } from './protocol/codec.js';",
        'export const x = [CloseCode, decode];',
      ].join('\n'),
      'src/protocol/close-codes.ts': "import { x } from '../errors.js';\nexport const CloseCode = { x };\n",
    });
    expect(checkLayers(root).sort()).toEqual([
      'src/errors.ts: "errors" may not import "protocol" (./protocol/codec.js)',
      'src/protocol/close-codes.ts: a leaf file imports nothing (../errors.js)',
    ]);
  });
});

describe('the function-size rule', () => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');

  it('holds on this checkout', () => {
    expect(checkSizes(repoRoot)).toEqual([]);
  });

  it('fails on a function over the limit, on an allowed one that grew, and on a stale allowance', () => {
    const root = tree({
      'src/a.ts': `export function long() {\n${body(160)}\n}\n`,
      'src/b.ts': `export function grown() {\n${body(170)}\n}\nexport function short() {\n${body(3)}\n}\n`,
    });
    const problems = checkSizes(root, {
      'src/b.ts#grown': { lines: 160, why: 'test' },
      'src/b.ts#short': { lines: 200, why: 'test' },
    }).sort();
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/src\/a\.ts#long .* is 162 lines/);
    expect(problems[1]).toMatch(/src\/b\.ts#grown .* grew to 172 lines/);
    expect(problems[2]).toMatch(/src\/b\.ts#short is no longer over 150 lines/);
  });
});

describe('the rule against silenced promises', () => {
  it('holds on this checkout', () => {
    expect(checkSwallowed(repoRoot)).toEqual([]);
  });

  it('fails on a catch that drops the error, and lets the named helpers through', () => {
    const root = tree({
      'src/a.ts': [
        'export async function a(p: Promise<void>) {',
        '  p.catch(() => undefined);',
        '  await p.catch(() => {});',
        '}',
      ].join('\n'),
      'src/b.ts': [
        "import { background, observed, settled } from './util/background.js';",
        'export async function b(p: Promise<void>) {',
        '  observed(p);',
        "  void background(p, 'task', () => undefined);",
        '  await settled(p);',
        '  await p.catch((err: unknown) => console.error(err));',
        '}',
      ].join('\n'),
    });
    const problems = checkSwallowed(root);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^src\/a\.ts:2: /);
    expect(problems[1]).toMatch(/^src\/a\.ts:3: /);
  });
});
