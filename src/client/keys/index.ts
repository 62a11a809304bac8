/**
 * Signing keys for the client (`signet trust …`, `signet/client`), in the on-disk format of
 * `docker trust` and the `notary` CLI, so that keys move freely between the three.
 */
export { KeyStoreError, type KeyStoreErrorCode } from './errors.js';
export {
  generateSigningKey,
  keyFromPrivate,
  withRole,
  type ClientKeyType,
  type KeyMaterial,
  type SigningKey,
  type SigningKeyType,
  type TufPublicKey,
} from './signing-key.js';
export {
  decodePrivateKeyPem,
  encodeNotaryPlainPrivateKeyPem,
  encodeNotaryPrivateKeyPem,
  encryptNotaryPrivateKey,
  NOTARY_PBKDF2_ITERATIONS,
  readPrivateKeyHeaders,
  type DecodedPrivateKey,
  type EncryptionParameters,
} from './pkcs8.js';
export { publicKeyPem, rootCertificate, ROOT_CERTIFICATE_VALIDITY_MS, type RootCertificate } from './certificates.js';
export { dockerTrustDir, KeyStore, notaryTrustDir, type KeyInfo } from './key-store.js';
export {
  constantPassphrase,
  envPassphrases,
  passphraseVariables,
  type PassphraseOptions,
  type PassphraseSource,
  type PassphraseTerminal,
} from './passphrase.js';
