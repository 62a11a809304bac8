/**
 * Validation failures of an update, shaped as notary's `SerializableError` so that clients can
 * show the reason: `{"Name":"ErrBadRoot","Error":{"Msg":"…"}}`.
 */
import { SignetError } from '../core/signet-error.js';

export type ValidationErrorName = 'ErrValidation' | 'ErrBadHierarchy' | 'ErrBadRoot' | 'ErrBadTargets' | 'ErrBadSnapshot';

export class ValidationError extends SignetError {
  readonly code = 'VALIDATION';
  override name = 'ValidationError';
  constructor(
    readonly kind: ValidationErrorName,
    message: string,
    readonly missing?: string,
  ) {
    super(message);
  }

  /** The `detail` of the INVALID_UPDATE error envelope. */
  toDetail(): { Name: string; Error: Record<string, string> } {
    const error: Record<string, string> = this.kind === 'ErrBadHierarchy' ? { Missing: this.missing ?? '', Msg: this.message } : { Msg: this.message };
    return { Name: this.kind, Error: error };
  }
}

export const badRoot = (msg: string) => new ValidationError('ErrBadRoot', msg);
export const badTargets = (msg: string) => new ValidationError('ErrBadTargets', msg);
export const badSnapshot = (msg: string) => new ValidationError('ErrBadSnapshot', msg);
export const invalid = (msg: string) => new ValidationError('ErrValidation', msg);
export const badHierarchy = (missing: string, msg: string) => new ValidationError('ErrBadHierarchy', msg, missing);

/** A role's version is not above every stored version of it (notary's `ErrOldVersion`). */
export class OldVersionError extends SignetError {
  readonly code = 'OLD_VERSION';
  override name = 'OldVersionError';
}
