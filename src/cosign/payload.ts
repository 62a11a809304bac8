/**
 * Cosign's "simple signing" payload, the bytes a tag-format signature signs:
 * `{"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},"type":"cosign container image signature"},"optional":O}`
 * exactly as sigstore/sigstore's payload.Cosign marshals it with Go's encoding/json (compact, this
 * key order, `optional` null without annotations, Go's HTML escaping of <, > and & in strings).
 * Written by hand because the bytes must be Go's: a signature is over them.
 *
 * Reading follows Go's decoder, which matches keys case-insensitively: the spec's own example
 * writes `Docker-manifest-digest`, and verifiers built on Go accept it, so we do too.
 */
import { CosignError } from './errors.js';

export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** Cosign's payload size limit (internal/pkg/cosign/payload/size). */
export const MAX_PAYLOAD_BYTES = 128 * 1024 * 1024;

export interface SimpleSigningPayload {
  dockerReference: string;
  /** `sha256:<hex>` of the signed manifest. */
  digest: string;
  type: string;
  /** The `-a key=value` claims, or null. */
  optional: Record<string, unknown> | null;
}

/** A JSON string as Go's encoding/json writes it (HTML-safe escapes, U+2028/2029 escaped). */
function goString(value: string): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function goValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return goString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(goValue).join(',')}]`;
  // Go marshals a map[string]interface{} with its keys sorted.
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${goString(k)}:${goValue(v)}`).join(',')}}`;
}

/** The payload bytes cosign signs for `digest` of the image `dockerReference`. */
export function simpleSigningPayload(dockerReference: string, digest: string, annotations?: Record<string, unknown> | null): Buffer {
  const optional = annotations && Object.keys(annotations).length ? goValue(annotations) : 'null';
  return Buffer.from(
    `{"critical":{"identity":{"docker-reference":${goString(dockerReference)}},"image":{"docker-manifest-digest":${goString(digest)}},"type":${goString(COSIGN_SIGNATURE_TYPE)}},"optional":${optional}}`,
    'utf8',
  );
}

/** The value of the key of `object` equal to `name` ignoring case (Go's decoder: an exact match first). */
function field(object: unknown, name: string): unknown {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return undefined;
  const record = object as Record<string, unknown>;
  if (Object.hasOwn(record, name)) return record[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(record)) if (key.toLowerCase() === lower) return record[key];
  return undefined;
}

/** Parse a payload; BAD_SIGNATURE_DATA for anything that is not one. */
export function parseSimpleSigningPayload(bytes: Buffer): SimpleSigningPayload {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new CosignError('BAD_SIGNATURE_DATA', 'the signed payload is not JSON');
  }
  const critical = field(json, 'critical');
  const dockerReference = field(field(critical, 'identity'), 'docker-reference');
  const digest = field(field(critical, 'image'), 'docker-manifest-digest');
  const type = field(critical, 'type');
  const optional = field(json, 'optional');
  if (typeof digest !== 'string') throw new CosignError('BAD_SIGNATURE_DATA', 'the signed payload names no critical.image.docker-manifest-digest');
  if (typeof type !== 'string') throw new CosignError('BAD_SIGNATURE_DATA', 'the signed payload has no critical.type');
  return {
    dockerReference: typeof dockerReference === 'string' ? dockerReference : '',
    digest,
    type,
    optional: typeof optional === 'object' && optional !== null && !Array.isArray(optional) ? (optional as Record<string, unknown>) : null,
  };
}
