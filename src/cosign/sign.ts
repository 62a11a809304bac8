/**
 * Signing an image digest with a cosign key, in the tag format (the default: every cosign version
 * verifies it), the bundle format (cosign 3's), or both.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { DOCKER_HUB, type RegistryClient, type RepositoryRef } from '../registry/index.js';
import { buildSignatureBundle, writeStoredBundle } from './bundles.js';
import { signMessage } from './crypto.js';
import { cosignKeyType } from './keys.js';
import { simpleSigningPayload } from './payload.js';
import { writeTagSignature } from './tag-signatures.js';

export type SignFormat = 'tag' | 'bundle' | 'both';

export interface CosignSignOptions {
  format?: SignFormat;
  /** `-a key=value` claims: the payload's `optional` (tag format), the subject's annotations (bundle). */
  annotations?: Record<string, string>;
  now?: Date;
}

export interface CosignSignResult {
  digest: string;
  /** The `.sig` tag written, and whether this signature was new there. */
  tag?: { tag: string; manifestDigest: string; written: boolean };
  bundle?: { manifestDigest: string; via: 'api' | 'tag-schema' };
}

/**
 * The `docker-reference` cosign writes: go-containerregistry's repository name, which spells
 * Docker Hub `index.docker.io`.
 */
export function cosignDockerReference(repo: RepositoryRef): string {
  return `${repo.registry === DOCKER_HUB ? 'index.docker.io' : repo.registry}/${repo.repository}`;
}

export async function signImageDigest(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  privateKey: KeyObject,
  options: CosignSignOptions = {},
): Promise<CosignSignResult> {
  cosignKeyType(privateKey, 'signing key');
  const format = options.format ?? 'tag';
  const result: CosignSignResult = { digest };
  if (format === 'tag' || format === 'both') {
    const payload = simpleSigningPayload(cosignDockerReference(repo), digest, options.annotations);
    const signatureBase64 = signMessage(privateKey, payload).toString('base64');
    result.tag = await writeTagSignature(client, repo, digest, { payload, signatureBase64 });
  }
  if (format === 'bundle' || format === 'both') {
    const bundle = buildSignatureBundle(privateKey, createPublicKey(privateKey), digest, options.annotations);
    result.bundle = await writeStoredBundle(client, repo, digest, bundle, options.now);
  }
  return result;
}
