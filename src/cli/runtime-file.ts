/**
 * The runtime file `parley start` writes beside its config while the node runs
 * (`parley.config.json` → `parley.config.runtime.json`): how `pay` and `status` find the
 * node's admin URL, even when it listens on an ephemeral port (`listen.port: 0`).
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

export const RuntimeInfo = z.object({
  pid: z.number().int(),
  address: z.string(),
  /** The channel endpoint (ws:// or wss://). */
  url: z.string(),
  /** Where the admin routes answer, on loopback. */
  adminUrl: z.string(),
  /** The bearer token the admin routes require, new at every start (the file is 0600). */
  adminToken: z.string().optional(),
  startedAt: z.string(),
});
export type RuntimeInfo = z.infer<typeof RuntimeInfo>;

/** The runtime file of a config file. */
export function runtimeFilePath(configFile: string): string {
  return configFile.endsWith('.json')
    ? `${configFile.slice(0, -'.json'.length)}.runtime.json`
    : `${configFile}.runtime.json`;
}

export function writeRuntimeFile(configFile: string, info: RuntimeInfo): void {
  const path = runtimeFilePath(configFile);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/**
 * Removes the runtime file if it is the one process `pid` wrote: a file another node (started
 * later with the same config) wrote over it, or anything unreadable, is not ours and stays.
 */
export function removeRuntimeFile(configFile: string, pid: number = process.pid): void {
  if (readRuntimeFile(configFile)?.pid === pid) rmSync(runtimeFilePath(configFile), { force: true });
}

function readRuntimeFile(configFile: string): RuntimeInfo | undefined {
  try {
    return RuntimeInfo.parse(JSON.parse(readFileSync(runtimeFilePath(configFile), 'utf8')));
  } catch {
    return undefined;
  }
}

/** The runtime file of a node that is still alive, or undefined (none, unreadable, or stale after a crash). */
export function readLiveRuntimeFile(configFile: string): RuntimeInfo | undefined {
  const info = readRuntimeFile(configFile);
  return info && isAlive(info.pid) ? info : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
