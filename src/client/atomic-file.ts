/**
 * Writing a file so that it is either there whole or not changed at all: a temporary file in the
 * same directory, written, fsynced, renamed over the target, the directory fsynced. On any
 * failure the temporary file is removed.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Temporary files are `.<name>.<random>.tmp`: hidden, and without the `.key` ending key listings look for. */
export function writeFileAtomic(target: string, data: string | Buffer, mode: number): void {
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', mode);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, target);
  } catch (err) {
    try {
      if (fd !== undefined) closeSync(fd);
    } catch {
      // the write already failed; that error is the one to report
    }
    try {
      unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    throw err;
  }
  syncDirectory(dir);
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms and file systems cannot fsync a directory; the rename itself is done.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
