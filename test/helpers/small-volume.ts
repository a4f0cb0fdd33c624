/**
 * A small volume for full-disk tests: a tmpfs mounted on a fresh temp folder (needs root; CI
 * runs as root). Tests that need one skip, with a visible reason, where it cannot be mounted.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallVolume {
  readonly path: string;
  /** Writes `filler` until the volume is full (ENOSPC); returns the bytes written. */
  fill(): number;
  /** Deletes the filler: the space is back. */
  free(): void;
  /** Unmounts and removes the folder. Idempotent. */
  dispose(): void;
}

/** Why a small volume cannot be had here (undefined when it can). Probed once. */
export const SMALL_VOLUME_UNAVAILABLE: string | undefined = (() => {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  try {
    mountSmallVolume(1).dispose();
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs: ${(err as Error).message.split('\n')[0]}`;
  }
})();

if (SMALL_VOLUME_UNAVAILABLE !== undefined) {
  console.warn(`[parley tests] full-disk tests are skipped: ${SMALL_VOLUME_UNAVAILABLE}`);
}

/** Mounts a tmpfs of `mebibytes` on a new temp folder. @throws when it cannot */
export function mountSmallVolume(mebibytes: number): SmallVolume {
  const path = mkdtempSync(join(tmpdir(), 'parley-volume-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mebibytes}m`, 'tmpfs', path], { stdio: 'pipe' });
  } catch (err) {
    rmdirSync(path);
    throw err;
  }
  const filler = join(path, 'filler');
  let mounted = true;
  return {
    path,
    fill() {
      const fd = openSync(filler, 'a');
      try {
        return fillWith(fd, 64 * 1024) + fillWith(fd, 512);
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    dispose() {
      if (!mounted) return;
      mounted = false;
      execFileSync('umount', ['-l', path], { stdio: 'pipe' });
      rmdirSync(path);
    },
  };
}

/** Appends blocks of `size` bytes until the volume is full; returns the bytes written. */
function fillWith(fd: number, size: number): number {
  const block = Buffer.alloc(size);
  let written = 0;
  for (;;) {
    try {
      written += writeSync(fd, block);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return written;
      throw err;
    }
  }
}
