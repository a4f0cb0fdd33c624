import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileDurably } from '../../src/cli/durable-file.js';
import { tempDir } from './helpers.js';

describe('writeFileDurably (config files the CLI acknowledges)', () => {
  const dirs: Array<{ dispose(): void }> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });
  const dir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d.path;
  };

  it('creates the file whole with its exact mode, and leaves no temporary file', () => {
    const root = dir();
    const file = join(root, 'config.json');
    writeFileDurably(file, '{"a":1}\n', { mode: 0o600, replace: false });
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(root)).toEqual(['config.json']);
  });

  it('keeps an existing file untouched unless asked to replace it', () => {
    const root = dir();
    const file = join(root, 'config.json');
    writeFileSync(file, 'old\n', { mode: 0o600 });
    expect(() => writeFileDurably(file, 'new\n', { mode: 0o600, replace: false })).toThrow(/EEXIST/);
    expect(readFileSync(file, 'utf8')).toBe('old\n');
    expect(readdirSync(root)).toEqual(['config.json']);
    writeFileDurably(file, 'new\n', { mode: 0o640, replace: true });
    expect(readFileSync(file, 'utf8')).toBe('new\n');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(readdirSync(root)).toEqual(['config.json']);
  });
});
