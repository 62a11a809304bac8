/** Cache headers of successful metadata reads (notary's `utils/http.go` cache config). */
import type { Response } from 'express';
import { formatLastModified } from '../tuf/core/time.js';

export interface CachePolicy {
  currentMaxAge: number;
  consistentMaxAge: number;
}

export function setMetadataCacheHeaders(res: Response, maxAge: number, current: boolean, lastModified: Date): void {
  res.set('Last-Modified', formatLastModified(lastModified.getTime()));
  if (maxAge > 0) {
    res.set('Cache-Control', `public, max-age=${maxAge}, s-maxage=${maxAge}${current ? ', must-revalidate' : ''}`);
  } else {
    res.set('Cache-Control', 'max-age=0, no-cache, no-store');
    res.set('Pragma', 'no-cache');
  }
}
