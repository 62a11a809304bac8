/**
 * Errors of the Notary v1 client. Each has a stable code that the `signet trust` commands map
 * to exit codes and that SDK users match on; refusals of the trust rules themselves are the
 * trusted set's TrustError (THRESHOLD, EXPIRED, ROLLBACK, ROOT_VERSION, HASH_MISMATCH, …).
 */
import { CodedError } from '../tuf/core/signet-error.js';

export type ClientErrorCode =
  | 'NOT_INITIALIZED' // the server has no trust data for the repository
  | 'SERVER' // the trust server answered with an error or something that is not metadata
  | 'UNAUTHORIZED' // the trust server (or its token service) refused the credentials
  | 'UPDATE_REFUSED' // the trust server refused a published update
  | 'PINNING' // the root does not match the pinned certificates or CA
  | 'NO_SUCH_TARGET' // the tag or digest is not signed
  | 'NO_SIGNING_KEY' // no key in the trust directory can sign the role
  | 'NOT_TRUSTED' // signed, but not by the signers the policy asks for
  | 'BAD_INPUT' // a name, key file or option that cannot be used
  | 'TRUST_STORE'; // the local trust directory cannot be read or written

export class ClientError extends CodedError<ClientErrorCode> {
  override name = 'ClientError';
}
