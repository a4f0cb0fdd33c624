#!/usr/bin/env node
// The `parley` executable. In an installed package it runs the compiled JavaScript (dist/); in a
// checkout (src/ beside it, tsx installed) it runs the TypeScript sources through tsx, so a
// change to src/ needs no build.
import { existsSync } from 'node:fs';

const checkout = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(checkout)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(checkout.href);
} else {
  await import('../dist/cli/main.js');
}
