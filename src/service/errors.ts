/** Failures of a use case that the HTTP layer maps to notary error codes. */

/** The requested metadata, key or repository does not exist (404 METADATA_NOT_FOUND). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** An uploaded part names a role the server does not accept (400 INVALID_ROLE). */
export class InvalidRoleError extends Error {
  override name = 'InvalidRoleError';
  constructor(readonly role: string) {
    super(`invalid role ${JSON.stringify(role)}`);
  }
}

/** An uploaded part has no role name (400 NO_FILENAME). */
export class NoFilenameError extends Error {
  override name = 'NoFilenameError';
}

/** Request parameters out of range (400 INVALID_PARAMETERS). */
export class InvalidParametersError extends Error {
  override name = 'InvalidParametersError';
}
