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
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) throw new HttpError('TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
