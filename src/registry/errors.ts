/** Errors of the registry client: stable codes, one line naming the registry. */
import { SignetError } from '../tuf/core/signet-error.js';

export type RegistryErrorCode =
  | 'UNREACHABLE'
  | 'TIMEOUT'
  | 'TLS'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NOT_FOUND'
  | 'BAD_RESPONSE'
  | 'DIGEST_MISMATCH'
  | 'CREDENTIALS'
  | 'DOCKER_CONFIG'
  | 'BAD_REQUEST';

export class RegistryError extends SignetError {
  override name = 'RegistryError';
  /** The HTTP status the registry answered, when the failure is an answer. */
  readonly status: number | undefined;
  constructor(
    readonly code: RegistryErrorCode,
    /** The registry host the failure is about. */
    readonly registry: string,
    message: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(`registry ${registry}: ${message}`, options.cause === undefined ? {} : { cause: options.cause });
    this.status = options.status;
  }
}
