/** Cosign signatures for Signet's client side and gate: keys, both storage formats, signing and verifying. */
export { CosignError, type CosignErrorCode } from './errors.js';
export {
  COSIGN_PRIVATE_KEY_PEM,
  DEFAULT_SCRYPT_N,
  SIGSTORE_PRIVATE_KEY_PEM,
  cosignKeyType,
  cosignPublicKeyPem,
  generateCosignKeyPair,
  isCosignPrivateKey,
  readCosignPrivateKey,
  readCosignPublicKey,
  writeCosignPrivateKey,
  type CosignKeyPair,
  type CosignKeyType,
} from './keys.js';
export { COSIGN_SIGNATURE_TYPE, parseSimpleSigningPayload, simpleSigningPayload, type SimpleSigningPayload } from './payload.js';
export * from './formats.js';
export { signMessage, verifyMessage } from './crypto.js';
export { readTagSignatures, writeTagSignature, type TagSignature, type TagSignatures, type WrittenTagSignature } from './tag-signatures.js';
export {
  buildSignatureBundle,
  checkBundle,
  parseBundle,
  publicKeyHint,
  readStoredBundles,
  signatureStatement,
  verifyBundleSignature,
  writeStoredBundle,
  type BundleCheck,
  type StoredBundle,
} from './bundles.js';
export {
  checkTagSignature,
  verifyCosignSignatures,
  type CosignEvidence,
  type CosignVerification,
  type CosignVerifyOptions,
  type SignatureFormat,
} from './verify.js';
export { cosignDockerReference, signImageDigest, type CosignSignOptions, type CosignSignResult, type SignFormat } from './sign.js';
export { PASSWORD_VARIABLE, cosignPassword, loadSigningKey, loadVerificationKey, readKeyReference, type KeySourceOptions } from './key-source.js';
export { importNotarySignatures, type ImportEntry, type ImportOptions, type ImportReport, type NotarySignedTag } from './import-notary.js';
