/**
 * The one error type of Signet's Cosign code. Messages name the key file, image or registry, never
 * a password or private key material.
 */
import { CodedError } from '../tuf/core/signet-error.js';

export type CosignErrorCode =
  /** Not a Cosign key file: no PEM block of a type Cosign writes, malformed JSON, bad DER. */
  | 'KEY_UNREADABLE'
  /** The password does not open the encrypted private key. */
  | 'PASSWORD_WRONG'
  /** The key is encrypted and no password was given: no COSIGN_PASSWORD, no terminal. */
  | 'PASSWORD_REQUIRED'
  /** A readable key Cosign cannot sign or verify with, or scrypt parameters Cosign refuses. */
  | 'KEY_UNSUPPORTED'
  /** `env://NAME` names a variable that is unset or empty. */
  | 'KEY_NOT_FOUND'
  /** Writing a key file failed, or it exists and overwriting was not asked for. */
  | 'KEY_WRITE_FAILED'
  /** Something given to the command or SDK is not usable (an image without a registry, a bad option). */
  | 'BAD_INPUT'
  /** Signature data in the registry that is not what Cosign writes (a `.sig` manifest with garbage, a bundle that does not parse). */
  | 'BAD_SIGNATURE_DATA'
  /** No signature by the key signs the image's digest. */
  | 'NOT_VERIFIED';

export class CosignError extends CodedError<CosignErrorCode> {
  override name = 'CosignError';
}
