/**
 * The one error model of Signet: every failure Signet raises on purpose is a SignetError with a
 * stable `code`, so that the HTTP layer, the command line and the logs decide by code, not by
 * class. It lives in src/tuf because src/tuf imports nothing else of Signet and every other
 * folder may import src/tuf.
 */
export abstract class SignetError extends Error {
  /** Stable across releases: callers and tests match on it, never on the message. */
  abstract readonly code: string;

  /** `cause` (ES2022) keeps the lower-level failure this one stands for, for logs and debugging. */
  constructor(message?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A SignetError whose code, one of the closed set C, is given when it is made. */
export class CodedError<C extends string> extends SignetError {
  constructor(
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The stable code of a Signet error; undefined for anything else (a bug, a library's error). */
export function signetErrorCode(error: unknown): string | undefined {
  return error instanceof SignetError ? error.code : undefined;
}
