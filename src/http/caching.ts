/**
 * The answer to a successful metadata read (notary's `utils/http.go` cache config): status,
 * type, length, Last-Modified and the cache headers. The fast path and the express path both
 * write it through `MetadataAnswers`, so they send the same headers; the constant parts are
 * computed once, and each Last-Modified date is formatted once per cached file.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { formatLastModified } from '../tuf/core/time.js';

export interface CachePolicy {
  currentMaxAge: number;
  consistentMaxAge: number;
}

function cacheControl(maxAge: number, current: boolean): Record<string, string> {
  return maxAge > 0
    ? { 'Cache-Control': `public, max-age=${maxAge}, s-maxage=${maxAge}${current ? ', must-revalidate' : ''}` }
    : { 'Cache-Control': 'max-age=0, no-cache, no-store', Pragma: 'no-cache' };
}

export class MetadataAnswers {
  private readonly current: Record<string, string>;
  private readonly consistent: Record<string, string>;
  // Keyed by the cache entry's own Date, so an entry's string lives exactly as long as it does.
  private readonly lastModified = new WeakMap<Date, string>();

  constructor(policy: CachePolicy) {
    this.current = cacheControl(policy.currentMaxAge, true);
    this.consistent = cacheControl(policy.consistentMaxAge, false);
  }

  /**
   * Write a 200 with the file. `current`: the file as of now (GET role.json), else a file named
   * by checksum or version, which never changes. No conditional 304s, exactly as notary answers.
   */
  send(res: ServerResponse, data: Buffer, lastModified: Date, current: boolean): void {
    let modified = this.lastModified.get(lastModified);
    if (!modified) {
      modified = formatLastModified(lastModified.getTime());
      this.lastModified.set(lastModified, modified);
    }
    const headers: OutgoingHttpHeaders = {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': data.length,
      'Last-Modified': modified,
      ...(current ? this.current : this.consistent),
    };
    res.writeHead(200, headers);
    res.end(data);
  }
}
