/**
 * Cosign 3's bundle format: a Sigstore bundle (v0.3) holding a DSSE envelope around an in-toto
 * statement whose subject is the image digest (predicate type `https://sigstore.dev/cosign/sign/v1`),
 * stored as an OCI 1.1 referrer of the image (cosign's pkg/oci/remote/write.go WriteReferrer: an
 * empty `{}` config of type `application/vnd.oci.empty.v1+json`, one layer, artifactType
 * `application/vnd.dev.sigstore.bundle.v0.3+json`, and the `dev.sigstore.bundle.*` annotations).
 *
 * The bundle is built and checked with sigstore-js (`@sigstore/bundle` for the format,
 * `@sigstore/verify` for DSSE, the key and any transparency-log proof); what is ours is the
 * statement and the OCI plumbing. Verification with a key needs no network: a transparency-log
 * entry in a bundle is verified when Rekor public keys are given and set aside otherwise (the
 * result says which).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { bundleFromJSON, bundleToJSON, toDSSEBundle, type Bundle } from '@sigstore/bundle';
import { dsse } from '@sigstore/core';
import { toSignedEntity, Verifier, type TrustMaterial } from '@sigstore/verify';
import { MEDIA_TYPES, RegistryError, type RegistryClient, type RepositoryRef } from '../registry/index.js';
import { signMessage } from './crypto.js';
import { CosignError } from './errors.js';
import {
  BUNDLE_CONTENT_ANNOTATION,
  BUNDLE_MEDIA_TYPE,
  BUNDLE_PREDICATE_TYPE_ANNOTATION,
  COSIGN_SIGN_PREDICATE_TYPE,
  CREATED_ANNOTATION,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  OCI_EMPTY_MEDIA_TYPE,
} from './formats.js';

/** Largest bundle read; cosign's are a few kilobytes. */
export const MAX_BUNDLE_BYTES = 1024 * 1024;
/** At most this many bundle referrers are read for one digest (newest last in the index). */
export const MAX_BUNDLES_READ = 32;

const EMPTY_CONFIG = Buffer.from('{}');

/** cosign's and sigstore-go's key hint: base64 of SHA-256 over the key's SubjectPublicKeyInfo DER. */
export function publicKeyHint(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
}

/** The in-toto statement cosign 3 signs for an image digest (protojson's field names and order). */
export function signatureStatement(digest: string, annotations: Record<string, unknown> = {}): Buffer {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return Buffer.from(
    JSON.stringify({
      _type: IN_TOTO_STATEMENT_TYPE,
      subject: [{ digest: { [algorithm]: hex }, annotations }],
      predicateType: COSIGN_SIGN_PREDICATE_TYPE,
      predicate: {},
    }),
  );
}

/** A bundle (its JSON bytes) signing `digest` with `privateKey`, without transparency-log entries. */
export function buildSignatureBundle(privateKey: KeyObject, publicKey: KeyObject, digest: string, annotations?: Record<string, unknown>): Buffer {
  const statement = signatureStatement(digest, annotations);
  const signature = signMessage(privateKey, dsse.preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement));
  const bundle = toDSSEBundle({ artifact: statement, artifactType: IN_TOTO_PAYLOAD_TYPE, signature, keyHint: publicKeyHint(publicKey) });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

export interface StoredBundle {
  /** The referrer manifest's digest. */
  manifestDigest: string;
  bytes: Buffer;
}

export interface StoredBundles {
  bundles: StoredBundle[];
  /** Referrers that look like bundles but could not be read. */
  problems: string[];
  source: 'api' | 'tag-schema';
}

/** The bundle referrers of `digest` in `repo`, read (not yet verified). */
export async function readStoredBundles(client: RegistryClient, repo: RepositoryRef, digest: string): Promise<StoredBundles> {
  const { descriptors, source } = await client.getReferrers(repo, digest);
  const candidates = descriptors.filter((d) => d.artifactType === BUNDLE_MEDIA_TYPE);
  const problems: string[] = [];
  if (candidates.length > MAX_BUNDLES_READ) problems.push(`${candidates.length} bundles refer to ${digest}; the last ${MAX_BUNDLES_READ} were read`);
  const read = await Promise.all(
    candidates.slice(-MAX_BUNDLES_READ).map(async (d): Promise<StoredBundle | undefined> => {
      try {
        const manifest = await client.getManifest(client.at(repo, d.digest));
        const body = JSON.parse(manifest.bytes.toString('utf8')) as { layers?: { mediaType?: unknown; digest?: unknown; size?: unknown }[] };
        const layer = Array.isArray(body.layers) ? body.layers.find((l) => l?.mediaType === BUNDLE_MEDIA_TYPE) : undefined;
        if (!layer || typeof layer.digest !== 'string') return void problems.push(`referrer ${d.digest}: no bundle layer`);
        if (typeof layer.size === 'number' && layer.size > MAX_BUNDLE_BYTES)
          return void problems.push(`referrer ${d.digest}: bundle of ${layer.size} bytes, more than ${MAX_BUNDLE_BYTES}`);
        const bytes = await client.getBlob(repo, layer.digest, { maxBytes: MAX_BUNDLE_BYTES });
        return { manifestDigest: d.digest, bytes };
      } catch (error) {
        if (error instanceof SyntaxError) return void problems.push(`referrer ${d.digest}: the manifest is not JSON`);
        if (error instanceof RegistryError && error.code !== 'UNREACHABLE' && error.code !== 'TIMEOUT' && error.code !== 'TLS') {
          return void problems.push(`referrer ${d.digest}: ${error.message}`);
        }
        throw error;
      }
    }),
  );
  return { bundles: read.filter((b): b is StoredBundle => b !== undefined), problems, source };
}

export interface WrittenBundle {
  manifestDigest: string;
  /** Whether the registry indexed it itself (referrers API) or the `sha256-<hex>` index tag was updated. */
  via: 'api' | 'tag-schema';
}

/** Store a bundle as a referrer of `digest`, as cosign 3's `cosign sign` does. */
export async function writeStoredBundle(client: RegistryClient, repo: RepositoryRef, digest: string, bundle: Buffer, now = new Date()): Promise<WrittenBundle> {
  const subject = await client.resolveManifest(client.at(repo, digest));
  const config = await client.pushBlob(repo, EMPTY_CONFIG);
  const layer = await client.pushBlob(repo, bundle);
  // Go marshals a map with its keys sorted; time.RFC3339 in UTC has no fraction.
  const annotations = {
    [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope',
    [BUNDLE_PREDICATE_TYPE_ANNOTATION]: COSIGN_SIGN_PREDICATE_TYPE,
    [CREATED_ANNOTATION]: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  // cosign's referrerManifest: v1.Manifest's fields, then artifactType; descriptors mediaType, size, digest, annotations, artifactType.
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: OCI_EMPTY_MEDIA_TYPE, size: config.size, digest: config.digest, artifactType: BUNDLE_MEDIA_TYPE },
    layers: [{ mediaType: BUNDLE_MEDIA_TYPE, size: layer.size, digest: layer.digest }],
    annotations,
    subject: { mediaType: subject.mediaType, size: subject.size, digest: subject.digest },
    artifactType: BUNDLE_MEDIA_TYPE,
  };
  const stored = await client.putReferrer(repo, Buffer.from(JSON.stringify(manifest)), { subject: digest, artifactType: BUNDLE_MEDIA_TYPE, annotations });
  return { manifestDigest: stored.digest, via: stored.subjectAccepted ? 'api' : 'tag-schema' };
}

export interface BundleCheck {
  /** The statement names `digest` and the envelope's signature verifies with the key. */
  valid: boolean;
  /** Why not, when not valid. */
  reason?: string;
  /** `verified`: a transparency-log entry checked against the Rekor keys; `ignored`: entries present, no Rekor key given; `none`: no entry. */
  tlog: 'verified' | 'ignored' | 'none';
}

/**
 * The Rekor logs as @sigstore/verify takes them. `baseURL` is the log's URL: a checkpoint
 * (inclusion proof) counts only when its signer name matches it, so without one, entries whose
 * proof carries a checkpoint (all of Rekor v1's, as cosign 3 stores them) do not verify.
 */
function rekorTrust(rekorKeys: KeyObject[], baseURL = ''): TrustMaterial['tlogs'] {
  return rekorKeys.map((publicKey) => ({
    logID: createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest(),
    baseURL,
    publicKey,
    validFor: { start: new Date(0), end: new Date(8.64e15) },
  }));
}

/** Parse a bundle's JSON bytes; BAD_SIGNATURE_DATA when they are not a Sigstore bundle. */
export function parseBundle(bytes: Buffer): Bundle {
  if (bytes.length > MAX_BUNDLE_BYTES) throw new CosignError('BAD_SIGNATURE_DATA', `bundle of ${bytes.length} bytes, more than ${MAX_BUNDLE_BYTES}`);
  try {
    return bundleFromJSON(JSON.parse(bytes.toString('utf8')));
  } catch (error) {
    throw new CosignError('BAD_SIGNATURE_DATA', `not a Sigstore bundle: ${error instanceof Error ? error.message : String(error)}`.slice(0, 300));
  }
}

/** The reason a statement does not sign `digest` as a cosign image signature, or undefined when it does. */
function statementProblem(bundle: Bundle, digest: string): string | undefined {
  if (bundle.content.$case !== 'dsseEnvelope') return 'a message-signature bundle, not an image signature (cosign 3 signs images with a DSSE envelope)';
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return `DSSE payload type ${JSON.stringify(envelope.payloadType.slice(0, 100))}, not an in-toto statement`;
  let statement: { _type?: unknown; predicateType?: unknown; subject?: unknown };
  try {
    statement = JSON.parse(envelope.payload.toString('utf8')) as typeof statement;
  } catch {
    return 'the in-toto statement is not JSON';
  }
  if (statement?._type !== IN_TOTO_STATEMENT_TYPE) return 'not an in-toto v1 statement';
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE_TYPE)
    return `predicate type ${JSON.stringify(String(statement.predicateType).slice(0, 100))}, not a cosign signature`;
  const [algorithm, hex] = digest.split(':') as [string, string];
  const subjects = Array.isArray(statement.subject) ? (statement.subject as { digest?: Record<string, unknown> }[]) : [];
  if (!subjects.some((s) => s?.digest?.[algorithm] === hex)) return `the statement's subject is not ${digest}`;
  return undefined;
}

/**
 * Whether `bundle` is a cosign signature of `digest` by `publicKey`: the statement names the
 * digest, and verifyBundleSignature holds.
 */
export function checkBundle(bundle: Bundle, digest: string, publicKey: KeyObject, options: { rekorKeys?: KeyObject[]; rekorURL?: string } = {}): BundleCheck {
  const problem = statementProblem(bundle, digest);
  if (problem) return { valid: false, reason: problem, tlog: bundle.verificationMaterial.tlogEntries.length ? 'ignored' : 'none' };
  return verifyBundleSignature(bundle, publicKey, options);
}

/**
 * The signature of a key-signed bundle, checked by @sigstore/verify: DSSE (or message) signature
 * by `publicKey`, and with `rekorKeys` at least one transparency-log entry proven against them
 * (an inclusion promise or proof, and the entry's body matching the signature). Without Rekor keys
 * the entries are set aside, since @sigstore/verify would otherwise fail every entry it cannot
 * check. RFC 3161 timestamps are set aside always: key-signed cosign signatures need none, and no
 * timestamp authority is configured.
 */
export function verifyBundleSignature(
  bundle: Bundle,
  publicKey: KeyObject,
  options: { rekorKeys?: KeyObject[]; rekorURL?: string; artifact?: Buffer } = {},
): BundleCheck {
  const entries = bundle.verificationMaterial.tlogEntries.length;
  const rekor = options.rekorKeys?.length ? options.rekorKeys : undefined;
  const tlog: BundleCheck['tlog'] = entries === 0 ? 'none' : rekor ? 'verified' : 'ignored';
  if (bundle.verificationMaterial.content.$case !== 'publicKey')
    return { valid: false, reason: 'signed with a certificate, not a key', tlog: entries ? 'ignored' : 'none' };
  const entity = {
    ...bundle,
    verificationMaterial: {
      ...bundle.verificationMaterial,
      tlogEntries: rekor ? bundle.verificationMaterial.tlogEntries : [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
  } as Bundle;
  const trust: TrustMaterial = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    ctlogs: [],
    tlogs: rekor ? rekorTrust(rekor, options.rekorURL) : [],
    publicKey: () => ({ publicKey, validFor: () => true }),
  };
  try {
    new Verifier(trust, { tlogThreshold: rekor ? 1 : 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(entity, options.artifact));
    return { valid: true, tlog };
  } catch (error) {
    const code = String((error as { code?: unknown }).code ?? '');
    const reason = !code.startsWith('TLOG')
      ? 'the signature does not verify with this key'
      : entries === 0
        ? 'no transparency-log entry, and Rekor keys are configured so one is required'
        : `the transparency-log entry does not verify with the configured Rekor keys (${code})`;
    return { valid: false, reason, tlog };
  }
}
