/**
 * Which of a set of named keys signed an image digest with cosign, in either storage format:
 * the tag format (`sha256-<hex>.sig`) and the bundle format (OCI referrers). This is cosign's
 * key-based `cosign verify`: a signature counts for a key when it verifies with the key and what
 * it signs names this digest (the simple-signing payload's `docker-manifest-digest`, or the
 * in-toto statement's subject). The payload's `docker-reference` is not compared, as cosign does
 * not compare it.
 */
import type { KeyObject } from 'node:crypto';
import type { RegistryClient, RepositoryRef } from '../registry/index.js';
import { checkBundle, parseBundle, readStoredBundles } from './bundles.js';
import { verifyMessage } from './crypto.js';
import { CosignError } from './errors.js';
import { COSIGN_SIGNATURE_TYPE, parseSimpleSigningPayload } from './payload.js';
import { readTagSignatures, type TagSignature } from './tag-signatures.js';

export type SignatureFormat = 'tag' | 'bundle';

export interface CosignVerifyOptions {
  /** Key name → public key. */
  keys: ReadonlyMap<string, KeyObject>;
  /** Verify bundles' transparency-log entries against these; without, entries are set aside. */
  rekorKeys?: KeyObject[];
  /** The Rekor log's URL (such as https://rekor.sigstore.dev): checkpoints of inclusion proofs must be signed under its name. */
  rekorURL?: string;
  /** Default both. */
  formats?: readonly SignatureFormat[];
  maxPayloadBytes?: number;
}

export interface CosignEvidence {
  key: string;
  format: SignatureFormat;
  /** For bundles: whether a transparency-log entry was verified, set aside, or absent. */
  tlog?: 'verified' | 'ignored' | 'none';
  /** The simple-signing payload's `optional` claims, for the tag format. */
  annotations?: Record<string, unknown> | null;
}

export interface CosignVerification {
  digest: string;
  /** Names of the keys with at least one valid signature of the digest (each once). */
  signers: string[];
  evidence: CosignEvidence[];
  /** Signatures found that count for no key, and why; unreadable signature data. */
  problems: string[];
  /** How many signatures were found at all. */
  found: number;
}

/** Whether a tag-format signature signs `digest` with `key`; the reason when not. */
export function checkTagSignature(
  signature: TagSignature,
  digest: string,
  key: KeyObject,
): { valid: boolean; reason?: string; annotations?: Record<string, unknown> | null } {
  if (!verifyMessage(key, signature.payload, signature.signature)) return { valid: false, reason: 'the signature does not verify with this key' };
  let payload;
  try {
    payload = parseSimpleSigningPayload(signature.payload);
  } catch (error) {
    return { valid: false, reason: error instanceof CosignError ? error.message : 'unreadable payload' };
  }
  if (payload.type !== COSIGN_SIGNATURE_TYPE)
    return { valid: false, reason: `signed payload of type ${JSON.stringify(payload.type.slice(0, 100))}, not a cosign image signature` };
  if (payload.digest !== digest) return { valid: false, reason: `signed payload is for ${payload.digest.slice(0, 80)}, not ${digest}` };
  return { valid: true, annotations: payload.optional };
}

/** The cosign signatures of `digest` in `repo` and the keys they count for. */
export async function verifyCosignSignatures(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  options: CosignVerifyOptions,
): Promise<CosignVerification> {
  const formats = options.formats ?? ['tag', 'bundle'];
  const signers = new Set<string>();
  const evidence: CosignEvidence[] = [];
  const problems: string[] = [];
  let found = 0;
  const [tagged, bundled] = await Promise.all([
    formats.includes('tag')
      ? readTagSignatures(client, repo, digest, { ...(options.maxPayloadBytes ? { maxPayloadBytes: options.maxPayloadBytes } : {}) })
      : undefined,
    formats.includes('bundle') ? readStoredBundles(client, repo, digest) : undefined,
  ]);
  if (tagged) {
    problems.push(...tagged.problems.map((p) => `tag signature ${p}`));
    tagged.signatures.forEach((signature, i) => {
      found++;
      const reasons = new Set<string>();
      for (const [name, key] of options.keys) {
        const check = checkTagSignature(signature, digest, key);
        if (check.valid) {
          if (!signers.has(name)) evidence.push({ key: name, format: 'tag', annotations: check.annotations ?? null });
          signers.add(name);
          return;
        }
        if (check.reason !== 'the signature does not verify with this key') reasons.add(check.reason!);
      }
      problems.push(`tag signature ${i}: ${reasons.size ? [...reasons].join('; ') : 'signed by none of the configured keys'}`);
    });
  }
  if (bundled) {
    problems.push(...bundled.problems.map((p) => `bundle ${p}`));
    for (const stored of bundled.bundles) {
      found++;
      let bundle;
      try {
        bundle = parseBundle(stored.bytes);
      } catch (error) {
        problems.push(`bundle ${stored.manifestDigest}: ${(error as Error).message}`);
        continue;
      }
      const reasons = new Set<string>();
      let counted = false;
      for (const [name, key] of options.keys) {
        const check = checkBundle(bundle, digest, key, {
          ...(options.rekorKeys ? { rekorKeys: options.rekorKeys } : {}),
          ...(options.rekorURL ? { rekorURL: options.rekorURL } : {}),
        });
        if (check.valid) {
          if (!signers.has(name)) evidence.push({ key: name, format: 'bundle', tlog: check.tlog });
          signers.add(name);
          counted = true;
          break;
        }
        if (check.reason !== 'the signature does not verify with this key') reasons.add(check.reason!);
      }
      if (!counted) problems.push(`bundle ${stored.manifestDigest}: ${reasons.size ? [...reasons].join('; ') : 'signed by none of the configured keys'}`);
    }
  }
  return { digest, signers: [...signers], evidence, problems, found };
}
