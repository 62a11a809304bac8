/** The registry client of Signet's client side: image references, docker credentials, the OCI distribution API. */
export {
  DEFAULT_TAG,
  DOCKER_HUB,
  DOCKER_HUB_API_HOST,
  ReferenceError,
  formatImageReference,
  isSha256Digest,
  isValidTag,
  manifestReference,
  parseImageReference,
  registryApiHost,
  type ImageReference,
} from './reference.js';
export {
  CredentialsError,
  DockerConfigCredentials,
  credentialKey,
  dockerConfigDir,
  staticCredentials,
  type CredentialSource,
  type CredentialsErrorCode,
  type DockerConfigOptions,
  type RegistryCredentials,
} from './docker-config.js';
export {
  MAX_REFERRERS,
  MEDIA_TYPES,
  RegistryClient,
  referrersTag,
  type OciDescriptor,
  type PutManifestResult,
  type Referrers,
  type BlobDescriptor,
  type Manifest,
  type ManifestDescriptor,
  type RegistryClientOptions,
  type RepositoryRef,
} from './registry-client.js';
export { RegistryError, type RegistryErrorCode } from './errors.js';
export { parseChallenge, repositoryAuthenticator, type Challenge } from './token-auth.js';
