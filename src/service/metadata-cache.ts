/**
 * Parsed metadata by content hash. A stored file never changes, so its parse can be reused by
 * every request and every process-local reader without invalidation; the map is bounded.
 */
import { parseSignedFile, type SignedFile } from '../tuf/metadata.js';
import type { StoredFileRow } from '../storage/metadata-store.js';

export class ParsedFileCache {
  private readonly files = new Map<string, SignedFile>();

  constructor(private readonly capacity = 10_000) {}

  parse(row: StoredFileRow): SignedFile {
    const key = `${row.role}\u0000${row.sha256}`;
    let file = this.files.get(key);
    if (!file) {
      file = parseSignedFile(row.role, row.data);
      if (this.files.size >= this.capacity) this.files.delete(this.files.keys().next().value!);
      this.files.set(key, file);
    }
    return file;
  }
}
