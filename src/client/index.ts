/**
 * `signet/client`: the Notary v1 client SDK. Loads no server code (no database driver, no
 * express), so a program that only signs or verifies pays neither their start-up nor memory.
 */
export { TrustClient, DOCKER_HUB_TRUST_SERVER, type TrustClientOptions, type SignOptions, type SignOutcome } from './trust-client.js';
export { NotaryRepository, type RepositoryOptions } from './repository.js';
export { Publisher, RELEASES_ROLE, EXPIRY_MS, type TargetRecord, type InitOptions } from './publisher.js';
export { TrustServer, type TrustServerOptions, type Authenticator } from './trust-server.js';
export { TrustStore } from './trust-store.js';
export {
  Ceremony,
  parseStagedReference,
  readableDiff,
  type StagedUpdate,
  type SignAnswer,
  type RootRotationOptions,
  type RootRotationResult,
} from './ceremony.js';
export { KeyRing } from './key-ring.js';
export { checkPinnedRoot, type TrustPinning } from './pinning.js';
export { inspect, inspectPretty, verifyImage, signedTags, REPO_ADMIN, type TrustRepo, type Verified, type VerifyPolicy } from './signed-state.js';
export { ClientError, type ClientErrorCode } from './errors.js';
export { TrustError, TrustedSet, type TrustErrorCode } from '../tuf/notary/trusted-set.js';
export * from './keys/index.js';
