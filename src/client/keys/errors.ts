/**
 * The one error type of the client's key handling. Messages name the key file or key ID and the
 * role, never a passphrase or any private key material.
 */
import { CodedError } from '../../tuf/core/signet-error.js';

export type KeyStoreErrorCode =
  /** No key file with that ID in the trust directory. */
  | 'KEY_NOT_FOUND'
  /** The passphrase does not decrypt the key. */
  | 'PASSPHRASE_WRONG'
  /** The key is encrypted (or is to be) and no passphrase was given: no environment variable, no terminal. */
  | 'PASSPHRASE_REQUIRED'
  /** Not a private key in any format we read: no PEM block, bad base64, malformed DER. */
  | 'KEY_UNREADABLE'
  /** A readable key of a kind notary cannot sign with (an unknown algorithm, a curve other than P-256, RSA below 2048 bits). */
  | 'KEY_UNSUPPORTED'
  /** A key to store without a role, or a targets, snapshot or timestamp key without its GUN. */
  | 'KEY_ROLE_INVALID'
  /** Writing or removing a key file failed. */
  | 'KEY_WRITE_FAILED';

export class KeyStoreError extends CodedError<KeyStoreErrorCode> {
  override name = 'KeyStoreError';
}
