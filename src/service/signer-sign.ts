/**
 * The signing call of a server-held signer: a pipeline names a tag, its manifest digest and
 * size (and, where the signer asks for one, a scan report); Signet checks the caller and the
 * tag against the signer's rules, builds the next version of the signer's roles
 * (signer-targets.ts), signs them with the key it holds and publishes them through the normal
 * update path, in one transaction under the repository lock: calls for one repository, from
 * any number of Signet processes, are applied one after the other, each on the version the
 * previous one stored. Every call, allowed or refused, is audited.
 */
import { z } from 'zod';
import { ScanRefusedError } from '../scan/index.js';
import { identityProblem, tagAllowed, type CallerIdentity } from '../auth/identity.js';
import { signDocument, type DocumentSigner } from '../tuf/notary/generate.js';
import { parseSignedFile, readSigned, rootSchema, targetsSchema, type TargetsSigned } from '../tuf/notary/metadata.js';
import { nextTargetsWith, signerRoles, targetEntry } from '../tuf/notary/signer-targets.js';
import { SignetError, signetErrorCode } from '../tuf/core/signet-error.js';
import type { Actor } from '../storage/audit-store.js';
import { withRepositoryLock, type ServiceContext } from './context.js';
import { applyUpdate } from './publish-update.js';
import { loadRepositoryState } from './repository-state.js';
import { parseRules, SignerError, usableKeys, type SignerRules } from './signers.js';

/** docker's tag grammar. */
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^(sha256:)?[0-9a-f]{64}$/;

/** The body of `POST …/signers/{name}/sign`. `scan` is the report, read by the scan policy. */
export const signRequestSchema = z.strictObject({
  tag: z.string().regex(TAG, 'tag must be a docker tag: letters, digits, _ . - (up to 128), not starting with . or -'),
  digest: z.string().regex(DIGEST, 'digest must be sha256:<64 lower-case hex digits>'),
  size: z
    .number()
    .int('size must be a whole number of bytes')
    .min(1, 'size must be at least 1')
    .max(2 ** 53 - 1),
  scan: z.unknown().optional(),
});
export type SignRequest = z.infer<typeof signRequestSchema>;

/**
 * Checks a scan report against a signer's scan rules (src/scan): throws a SignetError with a
 * stable code and the blocking findings when it fails; returns the evidence to keep (scanner,
 * version, database date, counts, the report's digest) when it passes.
 */
export interface ScanPolicy {
  check(input: { report: unknown; rules: Record<string, unknown>; digest: string; nowMs: number }): Record<string, unknown>;
}

export interface SignOptions {
  scanPolicy?: ScanPolicy | undefined;
  /** Largest role file the call may build (the server's limit on an uploaded one). */
  maxFileBytes?: number | undefined;
}

export interface SignAnswer {
  gun: string;
  signer: string;
  tag: string;
  digest: string;
  size: number;
  /** The roles the tag went into, with the keys that signed each. */
  roles: { role: string; keyIds: string[] }[];
  /** Every file stored: those roles, the snapshot and the timestamp, with their new versions. */
  published: { role: string; version: number }[];
  /** The scan evidence signed into the target's `custom` field, when a report was checked. */
  scan: Record<string, unknown> | null;
}

const MAX_CLAIM_TEXT = 512;
const MAX_CLAIMS = 50;

/** The identity as the audit trail keeps it: bounded, primitive claims only. */
export function auditIdentity(identity: CallerIdentity): { kind: string; subject: string; claims: Record<string, unknown> } {
  const claims: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(identity.claims).slice(0, MAX_CLAIMS)) {
    if (typeof v === 'string') claims[k.slice(0, 128)] = v.slice(0, MAX_CLAIM_TEXT);
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) claims[k.slice(0, 128)] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) claims[k.slice(0, 128)] = v.slice(0, 10).map((x) => x.slice(0, MAX_CLAIM_TEXT));
  }
  return { kind: identity.kind, subject: identity.subject.slice(0, MAX_CLAIM_TEXT), claims };
}

/** What a refused call's audit record says about the request, whatever of it could be read. */
export interface AttemptedSign {
  tag?: unknown;
  digest?: unknown;
  size?: unknown;
}

function requestSummary(attempt: AttemptedSign): Record<string, unknown> {
  const text = (v: unknown) => (typeof v === 'string' ? v.slice(0, 200) : undefined);
  return { tag: text(attempt.tag), digest: text(attempt.digest), size: typeof attempt.size === 'number' ? attempt.size : undefined };
}

/**
 * Audit a signing call refused before the use case ran (bad input, authentication, rate
 * limit). Never throws: a failure to audit must not change the answer.
 */
export async function auditSignRefusal(
  ctx: ServiceContext,
  gun: string,
  signer: string,
  identity: CallerIdentity,
  actor: Actor,
  attempt: AttemptedSign,
  refusal: { code: string; reason: string; scan?: unknown },
): Promise<void> {
  ctx.metrics.signerSigns.inc({ result: 'refused', code: refusal.code });
  try {
    await ctx.stores.audit.append(gun, 'signer-sign', actor, {
      signer,
      result: 'refused',
      code: refusal.code,
      reason: refusal.reason.slice(0, 1000),
      ...(refusal.scan !== undefined ? { scan: refusal.scan } : {}),
      identity: auditIdentity(identity),
      ...requestSummary(attempt),
    });
  } catch {
    // The database is unreachable: the request fails on that anyway.
  }
}

function scanPart(rules: SignerRules, request: SignRequest, options: SignOptions, nowMs: number, digestHex: string): Record<string, unknown> | null {
  if (!rules.scan && request.scan === undefined) return null;
  if (!options.scanPolicy)
    throw new SignerError('SIGN_REFUSED', 'this server does not check scan reports: the signer cannot require one, and none can be given');
  if (!rules.scan) throw new SignerError('SIGN_REFUSED', 'this signer has no scan rules: send no scan report');
  if (request.scan === undefined) throw new SignerError('SIGN_REFUSED', 'this signer signs only with a passing scan report: send one as scan');
  return options.scanPolicy.check({ report: request.scan, rules: rules.scan, digest: `sha256:${digestHex}`, nowMs });
}

/** Sign `request.tag` with signer `name` of `gun` and publish it. */
export async function signWithSigner(
  ctx: ServiceContext,
  gun: string,
  name: string,
  request: SignRequest,
  identity: CallerIdentity,
  actor: Actor,
  options: SignOptions = {},
): Promise<SignAnswer> {
  const digestHex = request.digest.startsWith('sha256:') ? request.digest.slice(7) : request.digest;
  const digest = `sha256:${digestHex}`;
  const audited = { signer: name, identity: auditIdentity(identity), tag: request.tag, digest, size: request.size };
  let purgedKeys: string[] = [];
  try {
    const signed = await withRepositoryLock(ctx, gun, async (stores) => {
      const signer = await stores.signers.get(gun, name);
      if (!signer) throw new SignerError('SIGNER_NOT_FOUND', `no signer ${name} in ${gun}`);
      if (signer.state === 'disabled') throw new SignerError('SIGNER_DISABLED', `signer ${name} of ${gun} is disabled`);
      const rules = parseRules(signer.rules);
      const denied = identityProblem(rules.identities, identity);
      if (denied) throw new SignerError('SIGN_DENIED', `signer ${name} of ${gun}: ${denied}`);
      if (!tagAllowed(rules.tags, request.tag)) {
        throw new SignerError('SIGN_DENIED', `signer ${name} of ${gun} may not sign tag ${request.tag} (allowed: ${rules.tags!.join(', ')})`);
      }
      const nowMs = ctx.now();
      const scan = scanPart(rules, request, options, nowMs, digestHex);

      const purged = await stores.signers.purgeRetired(gun, name, new Date(nowMs));
      ctx.keys.forgetSignerKeys(purged);
      purgedKeys = purged;
      const keys = usableKeys(await stores.signers.keys(gun, name), nowMs);
      const state = await loadRepositoryState(stores.metadata, ctx.cache, gun, new Set(['targets', `targets/${name}`, 'targets/releases']));
      if (!state.root) throw new SignerError('SIGNER_NOT_DELEGATED', `${gun} has no trust data yet: initialise it and delegate to signer ${name} first`);
      const root = readSigned(rootSchema, state.root);
      if (!root.ok) throw new SignerError('SIGN_REFUSED', `the current root of ${gun} cannot be read: ${root.reason}`);
      const targetsOf = (role: string): TargetsSigned | null => {
        const file = state.targets.get(role);
        if (!file) return null;
        const read = readSigned(targetsSchema, file);
        return read.ok ? read.value : null;
      };
      const { roles, problem } = signerRoles(name, request.tag, root.value, targetsOf('targets'), new Set(keys.map((k) => k.keyId)));
      if (problem) throw new SignerError('SIGNER_NOT_DELEGATED', `signer ${name} of ${gun} cannot sign ${request.tag}: ${problem}`);

      const entry = targetEntry(digestHex, request.size, scan ? { signet: { signer: name, scan } } : undefined);
      const byId = new Map(keys.map((k) => [k.keyId, k]));
      const files = roles.map(({ role, keyIds }) => {
        const doc = nextTargetsWith(targetsOf(role), state.latestVersions.get(role) ?? 0, request.tag, entry, nowMs);
        const signers: DocumentSigner[] = keyIds.map((id) => ctx.keys.signerKey(byId.get(id)!));
        const bytes = signDocument(doc, signers);
        if (options.maxFileBytes !== undefined && bytes.length > options.maxFileBytes) {
          throw new SignerError(
            'SIGN_REFUSED',
            `${role} would be ${bytes.length} bytes with ${request.tag}, over the server's limit of ${options.maxFileBytes} bytes per metadata file: remove old tags from it first`,
          );
        }
        return parseSignedFile(role, bytes);
      });
      const result = await applyUpdate(ctx, stores, gun, files, actor, { signer: name });
      const answer: SignAnswer = { gun, signer: name, tag: request.tag, digest, size: request.size, roles, published: result.stored, scan };
      await stores.audit.append(gun, 'signer-sign', actor, { ...audited, result: 'signed', roles: roles.map((r) => r.role), published: result.stored, scan });
      return answer;
    });
    ctx.metrics.signerSigns.inc({ result: 'signed', code: '' });
    ctx.keys.destroyTokenKeys(purgedKeys);
    return signed;
  } catch (e) {
    const code = signetErrorCode(e);
    // A refusal (any error Signet raises on purpose but an unreachable database) is audited on
    // its own: the transaction that found it was rolled back.
    if (code !== undefined && code !== 'STORAGE_UNAVAILABLE') {
      const scan = e instanceof ScanRefusedError ? e.verdict.summary : undefined;
      await auditSignRefusal(ctx, gun, name, identity, actor, request, { code, reason: (e as SignetError).message, ...(scan ? { scan } : {}) });
    }
    throw e;
  }
}
