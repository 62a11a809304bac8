/**
 * Notary's error envelope (docker/distribution errcode): one registry of codes, each with its
 * HTTP status and verbatim message, and a mapping from Signet's failures to them.
 */
import type { Response } from 'express';
import { MalformedMetadataError } from '../tuf/notary/metadata.js';
import { OldVersionError, ValidationError } from '../tuf/notary/errors.js';
import { InvalidParametersError, InvalidRoleError, NoFilenameError, NotFoundError } from '../service/errors.js';
import { MultipartError } from './multipart.js';

export const ERROR_CODES = {
  NO_FILENAME: [400, 'No file/role name provided.'],
  INVALID_ROLE: [400, 'The role you are attempting to operate on is invalid.'],
  MALFORMED_JSON: [400, 'JSON sent by the client could not be parsed by the server'],
  UPDATING: [500, 'An error has occurred while updating the TUF repository.'],
  VERSION: [400, 'A newer version of metadata is already available.'],
  METADATA_NOT_FOUND: [404, 'You have requested metadata that does not exist.'],
  INVALID_UPDATE: [400, 'Update sent by the client is invalid.'],
  MALFORMED_UPLOAD: [400, 'The body of your request is malformed.'],
  INVALID_GUN: [400, 'The server does not support actions on images of this name.'],
  INVALID_PARAMETERS: [400, 'The parameters provided are not valid.'],
  UNAUTHORIZED: [401, 'authentication required'],
  DENIED: [403, 'requested access to the resource is denied'],
  TOO_LARGE: [413, 'The body of your request is too large.'],
  UNAVAILABLE: [503, 'service unavailable'],
  UNKNOWN: [500, 'unknown error'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly code: ErrorCode,
    readonly detail?: unknown,
  ) {
    super(ERROR_CODES[code][1]);
  }

  get status(): number {
    return ERROR_CODES[this.code][0];
  }
}

/** Notary clients read at most 1 KiB of an error body; a longer one loses the whole error. */
export const MAX_ERROR_BODY = 1024;

function envelope(code: string, message: string, detail: unknown): string {
  const entry: Record<string, unknown> = { code, message };
  if (detail !== undefined) entry['detail'] = detail;
  return JSON.stringify({ errors: [entry] }) + '\n';
}

/** Shorten a text until `render(text)` fits; the ellipsis tells a reader it was cut. */
function fitText(text: string, render: (t: string) => string): string | null {
  let lo = 0;
  let hi = text.length;
  let best: string | null = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const body = render(text.slice(0, mid) + '…');
    if (Buffer.byteLength(body) <= MAX_ERROR_BODY) {
      best = body;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/** The error body, cut to fit 1 KiB: long texts are shortened, other long details dropped. */
export function errorBody(error: HttpError): string {
  const full = envelope(error.code, error.message, error.detail);
  if (Buffer.byteLength(full) <= MAX_ERROR_BODY) return full;
  const detail = error.detail;
  if (typeof detail === 'string') {
    const cut = fitText(detail, (t) => envelope(error.code, error.message, t));
    if (cut) return cut;
  }
  if (detail && typeof detail === 'object' && 'Error' in detail) {
    const d = detail as { Name: string; Error: Record<string, string> };
    const msg = d.Error['Msg'] ?? '';
    const cut = fitText(msg, (t) =>
      envelope(error.code, error.message, { ...d, Error: { ...d.Error, Msg: t, ...(d.Error['Missing'] ? { Missing: d.Error['Missing'].slice(0, 64) } : {}) } }),
    );
    if (cut) return cut;
  }
  return envelope(error.code, error.message, undefined);
}

export function sendError(res: Response, error: HttpError): void {
  res.status(error.status).set('Content-Type', 'application/json; charset=utf-8').set('Cache-Control', 'no-store').send(errorBody(error));
}

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57014', '57P01', '57P02', '57P03']);

/** True for failures that mean "the database is unreachable right now". */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code && (CONNECTION_ERRORS.has(e.code) || e.code.startsWith('08'))) return true;
  const msg = e.message ?? '';
  return /timeout exceeded when trying to connect|Query read timeout|Connection terminated|connect ECONNREFUSED|Client has encountered a connection error/i.test(
    msg,
  );
}

/** Map any failure to the error clients should see; null means "unexpected: log it". */
export function toHttpError(error: unknown): HttpError | null {
  if (error instanceof HttpError) return error;
  if (error instanceof NotFoundError) return new HttpError('METADATA_NOT_FOUND');
  if (error instanceof ValidationError) return new HttpError('INVALID_UPDATE', error.toDetail());
  if (error instanceof OldVersionError) return new HttpError('VERSION', error.message);
  if (error instanceof MalformedMetadataError) return new HttpError('MALFORMED_JSON', error.message);
  if (error instanceof InvalidRoleError) return new HttpError('INVALID_ROLE', error.role);
  if (error instanceof NoFilenameError) return new HttpError('NO_FILENAME', error.message);
  if (error instanceof InvalidParametersError) return new HttpError('INVALID_PARAMETERS', error.message);
  if (error instanceof MultipartError) {
    if (error.code === 'NO_FILENAME') return new HttpError('NO_FILENAME', error.message);
    return new HttpError(error.code === 'PART_TOO_LARGE' ? 'TOO_LARGE' : 'MALFORMED_UPLOAD', error.message);
  }
  if (isDatabaseUnavailable(error)) return new HttpError('UNAVAILABLE', 'the database is unreachable');
  return null;
}
