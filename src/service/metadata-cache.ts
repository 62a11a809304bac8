/**
 * Parsed metadata by content hash. A stored file never changes, so its parse can be reused by
 * every request and every process-local reader without invalidation; the map is bounded.
 */
import { parseSignedFile, type SignedFile } from '../tuf/notary/metadata.js';
import type { StoredFileRow } from '../storage/metadata-store.js';

export class ParsedFileCache {
  private readonly files = new Map<string, SignedFile>();
  private bytes = 0;

  /**
   * Bounded by the total size of the cached files, oldest first out. A parsed file takes several
   * times its size in the heap, and every update adds new files that are rarely parsed again: a
   * 64 MB bound let a server's heap grow by some 100 MB of old versions under a write load
   * (8 MB of small files parsed took about 25 MB of heap).
   */
  constructor(private readonly maxBytes = 4 * 1024 * 1024) {}

  parse(row: StoredFileRow): SignedFile {
    const key = `${row.role}\u0000${row.sha256}`;
    let file = this.files.get(key);
    if (!file) {
      file = parseSignedFile(row.role, row.data);
      if (file.bytes.length > this.maxBytes / 4) return file; // too big to be worth keeping
      while (this.bytes + file.bytes.length > this.maxBytes && this.files.size > 0) {
        const [oldestKey, oldest] = this.files.entries().next().value!;
        this.files.delete(oldestKey);
        this.bytes -= oldest.bytes.length;
      }
      this.files.set(key, file);
      this.bytes += file.bytes.length;
    }
    return file;
  }
}
