/** Read a request body into memory, refusing more than `limit` bytes before buffering them. */
import type { Request } from 'express';
import { HttpError } from './errors.js';

export async function readBody(req: Request, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new HttpError('TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) throw new HttpError('TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    // The body stream fails only when the client's connection does (a hang-up, a timeout, bytes
    // node cannot parse). Its error says ECONNRESET, which would otherwise be taken for the
    // database's and reported as an outage (503 UNAVAILABLE, a warning).
    throw new HttpError('MALFORMED_UPLOAD', 'the request body ended early: the connection failed before it was complete');
  }
  return Buffer.concat(chunks, total);
}
