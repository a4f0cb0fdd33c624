#!/usr/bin/env node
// The function-size rule: no function in src/ longer than MAX_LINES lines (from its first line to
// its last, nested functions included), except those in ALLOWED, each with the reason it is still
// long and the length it may not grow past. `node scripts/check/function-size.mjs [root]` exits 1
// when a function over the limit is not allowed, when an allowed one grew, or when an allowed one
// is gone or now fits (so the list only shrinks). `--list N` prints the N longest functions.
// The goal is at most TARGET_ALLOWED entries; while ALLOWED holds more, it says so.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const MAX_LINES = 150;

export const TARGET_ALLOWED = 5;

const TO_SPLIT =
  'a factory whose closures hold several responsibilities; to be split by responsibility (docs/architecture.md, "Size")';

/** `path#name` → the length it may not grow past, and why it is still longer than the limit. */
export const ALLOWED = {
  'src/dashboard/model.ts#createDashboardModel': { lines: 490, why: TO_SPLIT },
  'src/dashboard/dashboard.ts#createDashboard': { lines: 160, why: TO_SPLIT },
  'src/transport/lip1-http.ts#createLip1HttpLink': { lines: 204, why: TO_SPLIT },
  'src/business/driver.ts#createBusinessDriver': { lines: 176, why: TO_SPLIT },
};

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'generated' && entry.name !== 'node_modules') yield* sourceFiles(path);
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path;
  }
}

function nameOf(node) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  if (node.name && ts.isStringLiteral(node.name)) return node.name.text;
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  return '(anonymous)';
}

/** Every function in the files under `root`/src with its length in lines. */
export function measure(root) {
  const out = [];
  for (const file of sourceFiles(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
        const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
        out.push({ id: `${relative(root, file)}#${nameOf(node)}`, lines: end - start + 1, line: start + 1 });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return out.sort((a, b) => b.lines - a.lines);
}

/** The problems of `root` against the rule: an empty list when it holds. */
export function check(root, allowed = ALLOWED, maxLines = MAX_LINES) {
  const problems = [];
  const long = measure(root).filter((f) => f.lines > maxLines);
  for (const f of long) {
    const allowance = allowed[f.id];
    if (allowance === undefined) {
      problems.push(`${f.id} (line ${f.line}) is ${f.lines} lines (limit ${maxLines}): split it`);
    } else if (f.lines > allowance.lines) {
      problems.push(
        `${f.id} (line ${f.line}) grew to ${f.lines} lines (allowed ${allowance.lines}): split it`,
      );
    }
  }
  for (const [id, allowance] of Object.entries(allowed)) {
    const f = long.find((g) => g.id === id);
    if (!f) problems.push(`${id} is no longer over ${maxLines} lines: remove it from ALLOWED`);
    else if (f.lines < allowance.lines)
      problems.push(`${id} shrank to ${f.lines} lines: lower its allowance`);
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const listAt = args.indexOf('--list');
  const root = args.find((a, i) => !a.startsWith('--') && i !== listAt + 1) ?? process.cwd();
  if (listAt >= 0) {
    for (const f of measure(root).slice(0, Number(args[listAt + 1] ?? 20)))
      console.log(`${f.lines}\t${f.id}:${f.line}`);
  } else {
    const problems = check(root);
    for (const p of problems) console.error(`function-size: ${p}`);
    const count = Object.keys(ALLOWED).length;
    if (count > TARGET_ALLOWED) {
      console.log(
        `function-size: ${count} functions are allowed over ${MAX_LINES} lines (goal: ${TARGET_ALLOWED})`,
      );
    }
    process.exitCode = problems.length > 0 ? 1 : 0;
  }
}
