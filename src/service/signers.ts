/**
 * Server-held signers: a named delegation key of a repository that Signet generates, keeps
 * encrypted under the KEK like its timestamp keys, and signs with when a pipeline asks
 * (signer-sign.ts). An admin creates, lists, disables, enables, rotates and deletes them; the
 * repository owner delegates to the key (targets/NAME and targets/releases) with the certificate
 * printed at creation. Each change runs under the repository lock and is audited.
 */
import { z } from 'zod';
import { scanPolicySchema } from '../scan/index.js';
import { CodedError } from '../tuf/core/signet-error.js';
import { readSigned, rootSchema, targetsSchema } from '../tuf/notary/metadata.js';
import type { Actor } from '../storage/audit-store.js';
import type { SignerKeyRow, SignerRow, SignerState } from '../storage/signer-store.js';
import type { Stores } from '../storage/stores.js';
import { withRepositoryLock, type ServiceContext } from './context.js';
import { loadRepositoryState } from './repository-state.js';

export type SignerErrorCode =
  /** No such signer in this repository (404). */
  | 'SIGNER_NOT_FOUND'
  /** A signer of that name exists already (409). */
  | 'SIGNER_EXISTS'
  /** The signer is disabled (409). */
  | 'SIGNER_DISABLED'
  /** The repository does not delegate to any key of this signer (409). */
  | 'SIGNER_NOT_DELEGATED'
  /** The caller's identity, or the tag, is not allowed by the signer's rules (403). */
  | 'SIGN_DENIED'
  /** The signing request cannot be carried out as given (400). */
  | 'SIGN_REFUSED';

export class SignerError extends CodedError<SignerErrorCode> {
  override name = 'SignerError';
}

export const SIGNER_NAME = /^[a-z0-9][a-z0-9_-]*$/;
export const MAX_SIGNERS_PER_REPOSITORY = 100;
const DAY_MS = 86_400_000;
export const DEFAULT_ROTATION_GRACE_MS = 7 * DAY_MS;
export const MAX_ROTATION_GRACE_MS = 365 * DAY_MS;

export const signerNameSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(SIGNER_NAME, `a signer name must match ${SIGNER_NAME.source}`)
  .refine((n) => n !== 'releases', 'releases is the role every signer publishes into: choose another name');

const pattern = z.string().min(1).max(256);
const patterns = z.union([pattern, z.array(pattern).min(1).max(50)]);

/** Who may use a signer and for which tags. Absent parts allow everything. */
export const signerRulesSchema = z.strictObject({
  /** Any one of these admits a caller (none: everyone with push access to the repository). */
  identities: z
    .array(
      z.strictObject({
        kind: z.enum(['registry-token', 'oidc', 'anonymous']).optional(),
        subject: patterns.optional(),
        claims: z
          .record(z.string().min(1).max(128), patterns)
          .refine((c) => Object.keys(c).length <= 50, 'at most 50 claim conditions')
          .optional(),
      }),
    )
    .max(100)
    .optional(),
  /** Tag patterns (exact or glob); none: every tag. */
  tags: z.array(pattern).max(100).optional(),
  /** What a scan report must show before this signer signs (src/scan's policy: maxAge, maxSeverity, ignore). */
  scan: scanPolicySchema.optional(),
});
export type SignerRules = z.infer<typeof signerRulesSchema>;

/** The stored rules, read back (a row written by another version is refused, never half-used). */
export function parseRules(raw: unknown): SignerRules {
  const parsed = signerRulesSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new SignerError('SIGN_REFUSED', "the signer's stored rules cannot be read: set them again");
  return parsed.data;
}

export interface SignerKeyView {
  keyId: string;
  state: 'active' | 'retiring';
  /** Where the private key is: `kek` (sealed in Signet's store) or `pkcs11` (in the token, never out of it). */
  backend: 'kek' | 'pkcs11';
  createdAt: string;
  /** Retiring keys: when they stop signing and are removed. */
  retireAfter: string | null;
}

export interface SignerView {
  gun: string;
  name: string;
  state: SignerState;
  rules: SignerRules;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  /** The active key, as delegations list it. */
  keyId: string | null;
  keytype: string | null;
  /** base64 of the certificate PEM (`keyval.public` of the delegation key). */
  publicKey: string | null;
  /** The delegation certificate (PEM) to give `notary delegation add` or `docker trust signer add`. */
  certificate: string | null;
  keys: SignerKeyView[];
  /** Single reads: the roles of the current metadata that list one of its keys. */
  delegatedIn?: { role: string; keyIds: string[] }[];
}

function certificateOf(publicKey: string): string {
  return Buffer.from(publicKey, 'base64').toString('latin1');
}

/** Keys that may still sign at `nowMs`: the active one and retiring ones inside their grace period. */
export function usableKeys(keys: readonly SignerKeyRow[], nowMs: number): SignerKeyRow[] {
  return keys.filter((k) => k.state === 'active' || (k.retireAfter !== null && k.retireAfter.getTime() > nowMs));
}

function view(row: SignerRow, keys: readonly SignerKeyRow[], nowMs: number): SignerView {
  const active = keys.find((k) => k.state === 'active') ?? null;
  return {
    gun: row.gun,
    name: row.name,
    state: row.state,
    rules: signerRulesSchema.safeParse(row.rules ?? {}).data ?? {},
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    keyId: active?.keyId ?? null,
    keytype: active?.keytype ?? null,
    publicKey: active?.publicKey ?? null,
    certificate: active ? certificateOf(active.publicKey) : null,
    keys: usableKeys(keys, nowMs).map((k) => ({
      keyId: k.keyId,
      state: k.state,
      backend: k.backend,
      createdAt: k.createdAt.toISOString(),
      retireAfter: k.retireAfter?.toISOString() ?? null,
    })),
  };
}

async function existing(stores: Stores, gun: string, name: string): Promise<SignerRow> {
  const row = await stores.signers.get(gun, name);
  if (!row) throw new SignerError('SIGNER_NOT_FOUND', `no signer ${name} in ${gun}`);
  return row;
}

/** Where the current metadata lists the signer's keys: targets/NAME, targets/releases, targets (as the repository key). */
async function delegatedIn(ctx: ServiceContext, stores: Stores, gun: string, keyIds: ReadonlySet<string>): Promise<{ role: string; keyIds: string[] }[]> {
  const state = await loadRepositoryState(stores.metadata, ctx.cache, gun, new Set(['targets']));
  const out: { role: string; keyIds: string[] }[] = [];
  const root = state.root ? readSigned(rootSchema, state.root) : null;
  if (root?.ok) {
    const ids = (root.value.roles['targets']?.keyids ?? []).filter((id) => keyIds.has(id));
    if (ids.length > 0) out.push({ role: 'targets', keyIds: ids });
  }
  const targetsFile = state.targets.get('targets');
  const targets = targetsFile ? readSigned(targetsSchema, targetsFile) : null;
  if (targets?.ok) {
    for (const d of targets.value.delegations?.roles ?? []) {
      const ids = d.keyids.filter((id) => keyIds.has(id));
      if (ids.length > 0) out.push({ role: d.name, keyIds: ids });
    }
  }
  return out;
}

/** Create signer `name` of `gun` with a new key; the answer carries its public key and certificate. */
export async function createSigner(ctx: ServiceContext, gun: string, name: string, rules: SignerRules, actor: Actor): Promise<SignerView> {
  return withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      const now = new Date(ctx.now());
      const count = (await stores.signers.list(gun)).length;
      if (count >= MAX_SIGNERS_PER_REPOSITORY) {
        throw new SignerError('SIGN_REFUSED', `${gun} already has ${MAX_SIGNERS_PER_REPOSITORY} server-held signers: delete some first`);
      }
      if (!(await stores.signers.insert({ gun, name, rules, createdBy: actor.subject, now }))) {
        throw new SignerError('SIGNER_EXISTS', `${gun} already has a signer ${name}`);
      }
      const key = await ctx.keys.createSignerKey(stores, gun, name, now.getTime());
      await stores.audit.append(gun, 'signer-create', actor, { signer: name, keyId: key.keyId, rules });
      return view((await stores.signers.get(gun, name))!, await stores.signers.keys(gun, name), now.getTime());
    },
    { changesMetadata: false },
  );
}

export async function listSigners(ctx: ServiceContext, gun: string): Promise<SignerView[]> {
  const nowMs = ctx.now();
  const out: SignerView[] = [];
  for (const row of await ctx.stores.signers.list(gun)) out.push(view(row, await ctx.stores.signers.keys(gun, row.name), nowMs));
  return out;
}

export async function getSigner(ctx: ServiceContext, gun: string, name: string): Promise<SignerView> {
  const row = await existing(ctx.stores, gun, name);
  const nowMs = ctx.now();
  const keys = await ctx.stores.signers.keys(gun, name);
  const out = view(row, keys, nowMs);
  out.delegatedIn = await delegatedIn(ctx, ctx.stores, gun, new Set(usableKeys(keys, nowMs).map((k) => k.keyId)));
  return out;
}

export async function setSignerState(ctx: ServiceContext, gun: string, name: string, state: SignerState, actor: Actor): Promise<SignerView> {
  return withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      const row = await existing(stores, gun, name);
      const now = new Date(ctx.now());
      if (row.state !== state) {
        await stores.signers.setState(gun, name, state, now);
        await stores.audit.append(gun, state === 'disabled' ? 'signer-disable' : 'signer-enable', actor, { signer: name });
      }
      return view((await stores.signers.get(gun, name))!, await stores.signers.keys(gun, name), now.getTime());
    },
    { changesMetadata: false },
  );
}

export async function setSignerRules(ctx: ServiceContext, gun: string, name: string, rules: SignerRules, actor: Actor): Promise<SignerView> {
  return withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      await existing(stores, gun, name);
      const now = new Date(ctx.now());
      await stores.signers.setRules(gun, name, rules, now);
      await stores.audit.append(gun, 'signer-rules', actor, { signer: name, rules });
      return view((await stores.signers.get(gun, name))!, await stores.signers.keys(gun, name), now.getTime());
    },
    { changesMetadata: false },
  );
}

/**
 * A new active key for signer `name`. The previous one keeps signing for `graceMs` (default 7
 * days) so that tags are signed while the owner moves the delegation to the new key; then it
 * is removed. With a grace of 0 it is removed at once.
 */
export async function rotateSigner(
  ctx: ServiceContext,
  gun: string,
  name: string,
  options: { graceMs?: number | undefined },
  actor: Actor,
): Promise<SignerView> {
  const graceMs = options.graceMs ?? DEFAULT_ROTATION_GRACE_MS;
  let gone: string[] = [];
  const out = await withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      await existing(stores, gun, name);
      const now = new Date(ctx.now());
      const purged = await stores.signers.purgeRetired(gun, name, now);
      const retired = await stores.signers.retireActive(gun, name, new Date(now.getTime() + graceMs));
      const removed = graceMs === 0 ? await stores.signers.purgeRetired(gun, name, new Date(now.getTime() + 1)) : [];
      ctx.keys.forgetSignerKeys([...purged, ...removed]);
      gone = [...purged, ...removed];
      const key = await ctx.keys.createSignerKey(stores, gun, name, now.getTime());
      await stores.audit.append(gun, 'signer-rotate', actor, {
        signer: name,
        keyId: key.keyId,
        retiring: graceMs === 0 ? [] : retired,
        removed: [...purged, ...removed],
        retireAfter: graceMs === 0 ? null : new Date(now.getTime() + graceMs).toISOString(),
      });
      const keys = await stores.signers.keys(gun, name);
      const out = view((await stores.signers.get(gun, name))!, keys, now.getTime());
      out.delegatedIn = await delegatedIn(ctx, stores, gun, new Set(usableKeys(keys, now.getTime()).map((k) => k.keyId)));
      return out;
    },
    { changesMetadata: false },
  );
  // Keys held in a token go from it once their rows are gone for good.
  ctx.keys.destroyTokenKeys(gone);
  return out;
}

/** Remove signer `name` and destroy its keys. Delegations to them stay until the owner removes them. */
export async function deleteSigner(
  ctx: ServiceContext,
  gun: string,
  name: string,
  actor: Actor,
): Promise<{ gun: string; name: string; deleted: true; keyIds: string[] }> {
  const out = await withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      await existing(stores, gun, name);
      const keyIds = (await stores.signers.keys(gun, name)).map((k) => k.keyId);
      await stores.signers.delete(gun, name);
      ctx.keys.forgetSignerKeys(keyIds);
      await stores.audit.append(gun, 'signer-delete', actor, { signer: name, keyIds });
      return { gun, name, deleted: true as const, keyIds };
    },
    { changesMetadata: false },
  );
  ctx.keys.destroyTokenKeys(out.keyIds);
  return out;
}
