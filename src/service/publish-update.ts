/** Publish an update: validate every uploaded role and store all of it, or none. */
import { OldVersionError } from '../tuf/notary/errors.js';
import { parseSignedFile } from '../tuf/notary/metadata.js';
import { isDelegationRole, isValidRole, parentRole } from '../tuf/notary/roles.js';
import { validateUpdate } from '../tuf/notary/validate-update.js';
import { SYSTEM_ACTOR, type Actor } from '../storage/audit-store.js';
import type { Stores } from '../storage/stores.js';
import type { SignedFile } from '../tuf/notary/metadata.js';
import { withRepositoryLock, type ServiceContext } from './context.js';
import { InvalidRoleError, NoFilenameError } from './errors.js';
import { loadRepositoryState } from './repository-state.js';

/** The stored roles an update can need: every ancestor of each uploaded delegation. */
export function ancestorsOf(roles: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const role of roles) {
    if (!isDelegationRole(role)) continue;
    for (let r = parentRole(role); r.length > 0; r = r.includes('/') ? parentRole(r) : '') out.add(r);
  }
  return out;
}

export interface UploadedRole {
  /** The multipart filename: the role, optionally with `.json`. */
  filename: string;
  data: Buffer;
}

export interface PublishResult {
  stored: { role: string; version: number }[];
}

export async function publishUpdate(ctx: ServiceContext, gun: string, parts: readonly UploadedRole[], actor: Actor = SYSTEM_ACTOR): Promise<PublishResult> {
  // Parse before taking the lock: malformed uploads cost no database work.
  const files = parts.map((part) => {
    const role = part.filename.endsWith('.json') ? part.filename.slice(0, -5) : part.filename;
    if (role === '') throw new NoFilenameError('a part has an empty role name');
    if (!isValidRole(role)) throw new InvalidRoleError(role);
    return parseSignedFile(role, part.data);
  });
  return withRepositoryLock(ctx, gun, (stores) => applyUpdate(ctx, stores, gun, files, actor));
}

/**
 * The normal update path inside the repository lock: read the state, validate every file in
 * full, store them with the generated snapshot and timestamp, audit. Also used by key
 * ceremonies to publish a staged update in the transaction that closes it.
 */
export async function applyUpdate(
  ctx: ServiceContext,
  stores: Stores,
  gun: string,
  files: readonly SignedFile[],
  actor: Actor,
  auditDetail: Record<string, unknown> = {},
): Promise<PublishResult> {
  const state = await loadRepositoryState(stores.metadata, ctx.cache, gun, ancestorsOf(files.map((f) => f.role)));
  const serverKeys = await ctx.keys.signingKeys(stores, gun);
  const plan = validateUpdate(files, state, serverKeys, {
    gun,
    nowMs: ctx.now(),
    snapshotExpiryMs: ctx.expiries.snapshotMs,
    timestampExpiryMs: ctx.expiries.timestampMs,
  });
  try {
    await stores.metadata.insert(gun, plan.files);
  } catch (e) {
    // The lock makes this unreachable between Signet processes; kept for foreign writers.
    if ((e as { code?: string }).code === '23505') throw new OldVersionError('a version was stored concurrently');
    throw e;
  }
  await stores.serverKeys.markUsed(plan.usedServerKeys);
  await stores.audit.append(gun, 'update', actor, { roles: plan.files.map((f) => ({ role: f.role, version: f.version })), ...auditDetail });
  ctx.metrics.signatures.inc({ role: 'timestamp' });
  if (!files.some((f) => f.role === 'snapshot')) ctx.metrics.signatures.inc({ role: 'snapshot' });
  return { stored: plan.files.map((f) => ({ role: f.role, version: f.version })) };
}
