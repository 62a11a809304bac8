/** Failures of a use case that the HTTP layer maps to notary error codes. */
import { SignetError } from '../tuf/core/signet-error.js';

/** The requested metadata, key or repository does not exist (404 METADATA_NOT_FOUND). */
export class NotFoundError extends SignetError {
  readonly code = 'NOT_FOUND';
  override name = 'NotFoundError';
}

/** An uploaded part names a role the server does not accept (400 INVALID_ROLE). */
export class InvalidRoleError extends SignetError {
  readonly code = 'INVALID_ROLE';
  override name = 'InvalidRoleError';
  constructor(readonly role: string) {
    super(`invalid role ${JSON.stringify(role)}`);
  }
}

/** An uploaded part has no role name (400 NO_FILENAME). */
export class NoFilenameError extends SignetError {
  readonly code = 'NO_FILENAME';
  override name = 'NoFilenameError';
}

/** Request parameters out of range (400 INVALID_PARAMETERS). */
export class InvalidParametersError extends SignetError {
  readonly code = 'INVALID_PARAMETERS';
  override name = 'InvalidParametersError';
}
