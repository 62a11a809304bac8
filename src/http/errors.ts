/**
 * Notary's error envelope (docker/distribution errcode): one registry of codes, each with its
 * HTTP status and verbatim message, and one table from Signet's error codes to them.
 */
import type { Response } from 'express';
import type { MalformedMetadataError } from '../tuf/notary/metadata.js';
import type { OldVersionError, ValidationError } from '../tuf/notary/errors.js';
import { SignetError } from '../tuf/core/signet-error.js';
import type { InvalidParametersError, InvalidRoleError, NoFilenameError, NotFoundError } from '../service/errors.js';
import type { MultipartErrorCode } from './multipart.js';
import type { StagedErrorCode } from '../service/staged-updates.js';
import type { SignerErrorCode } from '../service/signers.js';
import type { IdentityRefusedError } from '../auth/identity.js';
import type { ScanRefusalCode, ScanRefusedError, ScanReportErrorCode } from '../scan/index.js';

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
  // ---- staged updates (key ceremonies) ----
  STAGED_NOT_FOUND: [404, 'There is no such staged update.'],
  STAGED_CLOSED: [409, 'The staged update is no longer pending.'],
  STAGED_EXPIRED: [410, 'The staged update has expired.'],
  STAGED_OUTDATED: [409, 'The repository has moved on since the update was staged.'],
  SIGNATURE_REFUSED: [400, 'A signature was refused.'],
  STAGE_REFUSED: [400, 'The update cannot be staged.'],
  // ---- server-held signers ----
  SIGNER_NOT_FOUND: [404, 'There is no such signer.'],
  SIGNER_EXISTS: [409, 'A signer of that name exists already.'],
  SIGNER_DISABLED: [409, 'The signer is disabled.'],
  SIGNER_NOT_DELEGATED: [409, 'The repository does not delegate to this signer.'],
  SIGN_DENIED: [403, 'The signer may not sign this for this caller.'],
  SIGN_REFUSED: [400, 'The signing request cannot be carried out.'],
  RATE_LIMITED: [429, 'Too many requests.'],
  SCAN_REFUSED: [422, 'The scan report does not allow signing this digest.'],
  SCAN_INVALID: [400, 'The scan report cannot be read.'],
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

/** How one Signet error code reaches the client: notary's code, and the `detail` to send. */
export interface NotaryMapping<E extends SignetError = SignetError> {
  notary: ErrorCode;
  detail?: (error: E) => unknown;
}

const message = (e: Error) => e.message;
/** The reasons and the findings that block (the first few: the body stays within 1 KiB). */
const scanRefusal = (e: Error) => {
  const d = (e as ScanRefusedError).detail(5);
  return { reasons: d.reasons, blocking: d.blocking.map((f) => `${f.id} (${f.severity}, ${f.package} ${f.version ?? ''})`.trim()), more: d.moreBlocking };
};

/** The codes a request can fail with on purpose; each must have an entry below. */
export type RequestErrorCode =
  | NotFoundError['code']
  | ValidationError['code']
  | OldVersionError['code']
  | MalformedMetadataError['code']
  | InvalidRoleError['code']
  | NoFilenameError['code']
  | InvalidParametersError['code']
  | MultipartErrorCode
  | StagedErrorCode
  | SignerErrorCode
  | IdentityRefusedError['code']
  | ScanRefusalCode
  | ScanReportErrorCode
  // src/storage's StorageUnavailableError: http may not import storage, only know its code.
  | 'STORAGE_UNAVAILABLE';

/**
 * Signet error code → notary's envelope: the one place that decides what a client sees. A code
 * that is not here (a key, trust or configuration failure inside a request) is unexpected: it
 * is logged and answered as UNKNOWN, or UPDATING on an update, as notary does.
 */
export const NOTARY_ERRORS: { readonly [C in RequestErrorCode]: NotaryMapping } = {
  NOT_FOUND: { notary: 'METADATA_NOT_FOUND' },
  VALIDATION: { notary: 'INVALID_UPDATE', detail: (e) => (e as ValidationError).toDetail() },
  OLD_VERSION: { notary: 'VERSION', detail: message },
  MALFORMED_METADATA: { notary: 'MALFORMED_JSON', detail: message },
  INVALID_ROLE: { notary: 'INVALID_ROLE', detail: (e) => (e as InvalidRoleError).role },
  // Raised by the multipart parser (a part without a filename) and by publish (an empty one).
  NO_FILENAME: { notary: 'NO_FILENAME', detail: message },
  INVALID_PARAMETERS: { notary: 'INVALID_PARAMETERS', detail: message },
  MALFORMED_UPLOAD: { notary: 'MALFORMED_UPLOAD', detail: message },
  TOO_MANY_PARTS: { notary: 'MALFORMED_UPLOAD', detail: message },
  PART_TOO_LARGE: { notary: 'TOO_LARGE', detail: message },
  STORAGE_UNAVAILABLE: { notary: 'UNAVAILABLE', detail: () => 'the database is unreachable' },
  // ---- staged updates (key ceremonies) ----
  STAGED_NOT_FOUND: { notary: 'STAGED_NOT_FOUND', detail: message },
  STAGED_CLOSED: { notary: 'STAGED_CLOSED', detail: message },
  STAGED_EXPIRED: { notary: 'STAGED_EXPIRED', detail: message },
  STAGED_OUTDATED: { notary: 'STAGED_OUTDATED', detail: message },
  SIGNATURE_REFUSED: { notary: 'SIGNATURE_REFUSED', detail: message },
  STAGE_REFUSED: { notary: 'STAGE_REFUSED', detail: message },
  // ---- server-held signers ----
  SIGNER_NOT_FOUND: { notary: 'SIGNER_NOT_FOUND', detail: message },
  SIGNER_EXISTS: { notary: 'SIGNER_EXISTS', detail: message },
  SIGNER_DISABLED: { notary: 'SIGNER_DISABLED', detail: message },
  SIGNER_NOT_DELEGATED: { notary: 'SIGNER_NOT_DELEGATED', detail: message },
  SIGN_DENIED: { notary: 'SIGN_DENIED', detail: message },
  SIGN_REFUSED: { notary: 'SIGN_REFUSED', detail: message },
  // An identity token (OIDC) refused by its verifier.
  IDENTITY_REFUSED: { notary: 'UNAUTHORIZED', detail: message },
  // ---- sign after scan: a report that fails the signer's scan rules, or is none ----
  SCAN_WRONG_DIGEST: { notary: 'SCAN_REFUSED', detail: scanRefusal },
  SCAN_NO_DIGEST: { notary: 'SCAN_REFUSED', detail: scanRefusal },
  SCAN_TOO_OLD: { notary: 'SCAN_REFUSED', detail: scanRefusal },
  SCAN_NO_TIME: { notary: 'SCAN_REFUSED', detail: scanRefusal },
  SCAN_FROM_FUTURE: { notary: 'SCAN_REFUSED', detail: scanRefusal },
  SCAN_BLOCKED: { notary: 'SCAN_REFUSED', detail: scanRefusal },
  SCAN_MALFORMED: { notary: 'SCAN_INVALID', detail: message },
  SCAN_UNKNOWN_FORMAT: { notary: 'SCAN_INVALID', detail: message },
  SCAN_TOO_LARGE: { notary: 'TOO_LARGE', detail: message },
};

const mappings: ReadonlyMap<string, NotaryMapping> = new Map(Object.entries(NOTARY_ERRORS));

/** Map any failure to the error clients should see; null means "unexpected: log it". */
export function toHttpError(error: unknown): HttpError | null {
  // An answer already decided by the HTTP layer itself (a guard, the body reader).
  if (error instanceof HttpError) return error;
  if (!(error instanceof SignetError)) return null;
  const mapping = mappings.get(error.code);
  return mapping ? new HttpError(mapping.notary, mapping.detail?.(error)) : null;
}
