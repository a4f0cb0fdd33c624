/**
 * Splits a PostgreSQL script into its statements, at the semicolons that end them: not at one
 * inside a comment (`--`, nested `/* *\/`), a string (`'…'` with `''`, `E'…'` with `\'`), a quoted
 * identifier (`"…"`) or a dollar-quoted body (`$$…$$`, `$tag$…$tag$`). The pg driver adapter's own
 * `executeScript` splits at every `;`, so a semicolon in a migration's comment broke it.
 */

/** The statements of `script`, trimmed, in order; pieces holding only comments and blanks are dropped. */
export function splitSqlScript(script: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let hasCode = false;
  let i = 0;
  const n = script.length;

  const finish = (end: number): void => {
    if (hasCode) statements.push(script.slice(start, end).trim());
    start = end + 1;
    hasCode = false;
  };

  while (i < n) {
    const c = script[i]!;
    const next = script[i + 1];
    if (c === '-' && next === '-') {
      const eol = script.indexOf('\n', i + 2);
      i = eol === -1 ? n : eol + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (script[i] === '/' && script[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (script[i] === '*' && script[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      continue;
    }
    if (c === ';') {
      finish(i);
      i++;
      continue;
    }
    if (!/\s/.test(c)) hasCode = true;
    if (c === "'") {
      const escapes = i > 0 && /[eE]/.test(script[i - 1]!) && !/\w/.test(script[i - 2] ?? '');
      i = endOfQuoted(script, i, "'", escapes);
      continue;
    }
    if (c === '"') {
      i = endOfQuoted(script, i, '"', false);
      continue;
    }
    if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(script.slice(i, i + 64));
      // `$1` (a parameter) or `a$b` (part of a name) is not a dollar quote.
      if (tag && !/\w/.test(script[i - 1] ?? '')) {
        const close = script.indexOf(tag[0], i + tag[0].length);
        i = close === -1 ? n : close + tag[0].length;
        continue;
      }
    }
    i++;
  }
  finish(n);
  return statements;
}

/** Index just past the quoted text opening at `open` (a doubled quote stays inside). */
function endOfQuoted(script: string, open: number, quote: string, backslashEscapes: boolean): number {
  let i = open + 1;
  while (i < script.length) {
    const c = script[i]!;
    if (backslashEscapes && c === '\\') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (script[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return script.length;
}
