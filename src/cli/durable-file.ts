/**
 * Files the CLI acknowledges having written (a node's config, which holds its private key): on
 * disk, whole, before the command exits 0. The text goes to a temporary file beside the target,
 * is flushed (`fsync`), and only then takes the target's name; the directory is flushed too, so
 * the new name survives a power loss. A crash at any point leaves the old file or the new one,
 * never a truncated one.
 */
import { closeSync, fchmodSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface DurableWriteOptions {
  /** File mode, exact (not reduced by the umask), from the first byte. */
  mode: number;
  /** Replace an existing file; otherwise an existing file is an error (`EEXIST`) and is kept. */
  replace: boolean;
}

/** Writes `text` to `file` durably and atomically (see the module comment). */
export function writeFileDurably(file: string, text: string, options: DurableWriteOptions): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', options.mode);
  try {
    try {
      fchmodSync(fd, options.mode);
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // A hard link fails when the target exists: nothing of an existing file is touched.
    if (options.replace) renameSync(tmp, file);
    else linkSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
  syncDirectory(dirname(file));
}

/** Flushes a directory's entries (the new name). Not possible on every platform; then skipped. */
function syncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // Windows cannot fsync a directory; its rename is already durable there.
  } finally {
    closeSync(fd);
  }
}
