/**
 * Reading a JSON configuration file: a syntax error is reported with its line and column
 * (`JSON.parse` in Node 20 gives at most an offset, often not even that).
 */
import { readFileSync } from 'node:fs';
import { ParleyError } from '../errors.js';

/** Line and column (both from 1) of `offset` in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

/**
 * The offset of the first JSON syntax error in `text` and what was expected there, or undefined
 * when `text` is valid JSON (RFC 8259: one value, whitespace around it).
 */
export function jsonSyntaxError(text: string): { offset: number; expected: string } | undefined {
  let i = 0;
  class Stop {
    constructor(readonly expected: string) {}
  }
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string): void => {
    for (const ch of word) {
      if (text[i] !== ch) throw new Stop(`"${word}"`);
      i++;
    }
  };
  const string = (): void => {
    if (text[i] !== '"') throw new Stop('a double-quoted string');
    i++;
    for (;;) {
      const ch = text[i];
      if (ch === undefined) throw new Stop('the closing quote of a string');
      if (ch === '"') break;
      if (ch < ' ') throw new Stop('no control character inside a string');
      if (ch === '\\') {
        i++;
        if (text[i] === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) i += 4;
        else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) throw new Stop('a valid escape sequence');
      }
      i++;
    }
    i++;
  };
  const number = (): void => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match) throw new Stop('a value');
    i += match[0].length;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') throw new Stop('":" after a key');
        i++;
        value();
        ws();
        if (text[i] === '}') break;
        if (text[i] !== ',') throw new Stop('"," or "}"');
        i++;
      }
      i++;
    } else if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ']') break;
        if (text[i] !== ',') throw new Stop('"," or "]"');
        i++;
      }
      i++;
    } else if (ch === '"') string();
    else if (ch === 't') literal('true');
    else if (ch === 'f') literal('false');
    else if (ch === 'n') literal('null');
    else number();
  };
  try {
    value();
    ws();
    if (i < text.length) throw new Stop('the end of the file');
    return undefined;
  } catch (stop) {
    if (stop instanceof Stop) return { offset: i, expected: stop.expected };
    throw stop;
  }
}

/**
 * Reads `file` as one JSON object.
 * @throws CONFIG_INVALID: unreadable (the system's reason), a syntax error (with its line and
 *   column), or a value that is not an object
 */
export function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? String(cause);
    throw new ParleyError('CONFIG_INVALID', `cannot read ${file}: ${reason}`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const error = jsonSyntaxError(text) ?? { offset: 0, expected: 'valid JSON' };
    const { line, column } = lineColumn(text, error.offset);
    const found =
      text[error.offset] === undefined ? 'the end of the file' : JSON.stringify(text[error.offset]);
    throw new ParleyError(
      'CONFIG_INVALID',
      `${file}:${line}:${column}: invalid JSON: expected ${error.expected}, found ${found}`,
      { cause },
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ParleyError('CONFIG_INVALID', `${file}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}
