/**
 * The signed metadata files of a Notary v1 repository: the envelope every file shares and the
 * schemas of the four role types. Uploaded bytes are kept verbatim; parsing only reads them.
 */
import { z } from 'zod';
import { CanonicalJsonError, canonicalJson } from '../core/canonical-json.js';
import { parseRfc3339 } from '../core/time.js';
import type { SignatureEntry } from '../core/signatures.js';
import { SignetError } from '../core/signet-error.js';

/** The upload is not a readable metadata file (notary: 400 MALFORMED_JSON). */
export class MalformedMetadataError extends SignetError {
  readonly code = 'MALFORMED_METADATA';
  override name = 'MalformedMetadataError';
}

/** Versions are stored as Postgres `integer`; anything larger is refused as invalid metadata. */
export const MAX_VERSION = 2 ** 31 - 1;
const versionSchema = z.number().int().min(1).max(MAX_VERSION, `version must be at most ${MAX_VERSION}`);

// Checked by length and alphabet rather than one grouped regex: tens of thousands of target
// hashes go through here on a large upload.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const base64String = z.string().refine((s) => s.length % 4 === 0 && BASE64_CHARS.test(s), 'must be standard base64');

const envelopeSchema = z.object({
  signed: z.looseObject({
    _type: z.string(),
    version: z.number().int().safe(),
    expires: z.string(),
  }),
  signatures: z.array(z.object({ keyid: z.string(), method: z.string(), sig: base64String })).nullable(),
});

/** One metadata file: its exact bytes and what they say. */
export class SignedFile {
  private canonical?: Buffer;

  constructor(
    readonly role: string,
    readonly bytes: Buffer,
    readonly signed: Record<string, unknown> & { _type: string; version: number; expires: string },
    readonly signatures: SignatureEntry[],
    readonly expiresMs: number,
  ) {}

  get version(): number {
    return this.signed.version;
  }

  get type(): string {
    return this.signed._type;
  }

  /** The canonical bytes of `signed`: what the signatures cover. Computed once. */
  message(): Buffer {
    try {
      this.canonical ??= canonicalJson(this.signed);
    } catch (e) {
      // Non-integer numbers have no canonical form, so nothing in the file can be signed.
      if (e instanceof CanonicalJsonError) throw new MalformedMetadataError(`${this.role}: ${e.message}`);
      throw e;
    }
    return this.canonical;
  }

  isExpired(nowMs: number): boolean {
    return this.expiresMs < nowMs;
  }
}

/** Read a metadata file as notary's `SignedMeta` does; throws MalformedMetadataError. */
export function parseSignedFile(role: string, bytes: Buffer): SignedFile {
  // V8's JSON.parse is not recursive, so deep input parses; canonicalisation bounds the depth.
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MalformedMetadataError(`${role}: not valid JSON (${(e as Error).message})`);
  }
  const result = envelopeSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new MalformedMetadataError(`${role}: ${issue.path.join('.') || 'file'}: ${issue.message}`);
  }
  const { signed, signatures } = result.data;
  const expiresMs = parseRfc3339(signed.expires);
  if (expiresMs === null) {
    throw new MalformedMetadataError(`${role}: signed.expires is not an RFC 3339 time`);
  }
  // notary lower-cases the method on decode.
  const sigs = (signatures ?? []).map((s) => ({ ...s, method: s.method.toLowerCase() }));
  return new SignedFile(role, bytes, signed, sigs, expiresMs);
}

// ---- Role schemas (checked during validation; failures are the role's ErrBad… error) ----

export const keySchema = z.looseObject({
  keytype: z.string(),
  keyval: z.looseObject({
    public: base64String.min(1, 'public key is empty'),
    // Metadata is public: a key that carries private material is refused outright.
    private: z.union([z.null(), z.literal('')]).optional(),
  }),
});
export type MetadataKey = z.infer<typeof keySchema>;

const hashesSchema = z.record(z.string(), base64String);
const fileMetaSchema = z.looseObject({
  length: z.number().int().nonnegative().safe(),
  hashes: hashesSchema,
});

const roleKeysSchema = z.looseObject({
  keyids: z.array(z.string()),
  threshold: z.number().int().safe().min(1, 'threshold must be at least 1'),
});

export const rootSchema = z.looseObject({
  _type: z.literal('Root'),
  version: versionSchema,
  keys: z.record(z.string(), keySchema),
  roles: z.record(z.string(), roleKeysSchema),
});
export type RootSigned = z.infer<typeof rootSchema>;

export const delegationRoleSchema = z.looseObject({
  name: z.string(),
  keyids: z.array(z.string()),
  threshold: z.number().int().safe().min(1, 'threshold must be at least 1'),
  paths: z.array(z.string()).nullish(),
  path_hash_prefixes: z.array(z.string()).nullish(),
});
export type DelegationRole = z.infer<typeof delegationRoleSchema>;

/**
 * The `targets` map can hold tens of thousands of entries: it is checked in one tight loop
 * (same rules as fileMetaSchema) and passed through as parsed, instead of being copied entry by
 * entry by a schema. The issue names the first bad entry.
 */
type FileMetaEntry = z.infer<typeof fileMetaSchema>;
function targetsMapProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be an object';
  for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
    const e = entry as { length?: unknown; hashes?: unknown } | null;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return `${name}: must be an object`;
    if (typeof e.length !== 'number' || !Number.isSafeInteger(e.length) || e.length < 0) return `${name}.length: must be a non-negative integer`;
    const hashes = e.hashes;
    if (typeof hashes !== 'object' || hashes === null || Array.isArray(hashes)) return `${name}.hashes: must be an object`;
    for (const [alg, digest] of Object.entries(hashes as Record<string, unknown>)) {
      if (typeof digest !== 'string' || digest.length % 4 !== 0 || !BASE64_CHARS.test(digest)) return `${name}.hashes.${alg}: must be standard base64`;
    }
  }
  return null;
}
const targetsMapSchema = z.custom<Record<string, FileMetaEntry>>().superRefine((value, ctx) => {
  const problem = targetsMapProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const targetsSchema = z.looseObject({
  _type: z.literal('Targets'),
  version: versionSchema,
  targets: targetsMapSchema.nullish(),
  delegations: z
    .looseObject({
      keys: z.record(z.string(), keySchema).nullish(),
      roles: z.array(delegationRoleSchema).nullish(),
    })
    .nullish(),
});
export type TargetsSigned = z.infer<typeof targetsSchema>;

export const snapshotSchema = z.looseObject({
  _type: z.literal('Snapshot'),
  version: versionSchema,
  meta: z.record(z.string(), fileMetaSchema),
});
export type SnapshotSigned = z.infer<typeof snapshotSchema>;

export const timestampSchema = z.looseObject({
  _type: z.literal('Timestamp'),
  version: versionSchema,
  meta: z.record(z.string(), fileMetaSchema),
});
export type TimestampSigned = z.infer<typeof timestampSchema>;

type ReadResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Typed reads already made of a file, by schema. A stored file is parsed once (the service's
 * parsed-file cache hands out the same SignedFile for the same bytes), so its role schema is
 * checked once too, however many readers ask. Keyed weakly: a file no longer used takes its
 * reads with it.
 */
const typedReads = new WeakMap<SignedFile, Map<z.ZodType<unknown>, ReadResult<unknown>>>();

/** Parse `signed` against a role schema; returns the data or a human reason. Memoised per file. */
export function readSigned<T>(schema: z.ZodType<T>, file: SignedFile): ReadResult<T> {
  let reads = typedReads.get(file);
  const known = reads?.get(schema);
  if (known) return known as ReadResult<T>;
  const result = schema.safeParse(file.signed);
  let read: ReadResult<T>;
  if (result.success) read = { ok: true, value: result.data };
  else {
    const issue = result.error.issues[0]!;
    read = { ok: false, reason: `${file.role}: ${issue.path.join('.') || 'signed'}: ${issue.message}` };
  }
  if (!reads) typedReads.set(file, (reads = new Map()));
  reads.set(schema, read);
  return read;
}
