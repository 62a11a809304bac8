/**
 * Key ceremonies: updates staged before they meet their signature thresholds, signed by their
 * holders in separate rounds, and published through the normal update path in the transaction
 * that closes them. A staged update is never served as metadata: it lives in its own table
 * until it is published. Every step runs under the repository lock, so signatures arriving at
 * the same moment at several Signet processes are applied one after the other and the update is
 * published exactly once.
 */
import { randomUUID } from 'node:crypto';
import { sha256Hex } from '../tuf/core/hashes.js';
import type { VerifierKey } from '../tuf/core/keys.js';
import { CodedError } from '../tuf/core/signet-error.js';
import type { SignatureEntry } from '../tuf/core/signatures.js';
import { parseSignedFile, type SignedFile } from '../tuf/notary/metadata.js';
import { isDelegationRole, isValidRole } from '../tuf/notary/roles.js';
import { checkReachable, stagedThresholds, thresholdStatus, verifyEntry, type StagedThreshold, type ThresholdStatus } from '../tuf/notary/staged.js';
import { validateUpdate, type RepositoryState } from '../tuf/notary/validate-update.js';
import type { Actor } from '../storage/audit-store.js';
import type { StagedRow, StagedState } from '../storage/staged-store.js';
import type { Stores } from '../storage/stores.js';
import { withRepositoryLock, type ServiceContext } from './context.js';
import { InvalidRoleError } from './errors.js';
import { ancestorsOf, applyUpdate } from './publish-update.js';
import { loadRepositoryState } from './repository-state.js';

export type StagedErrorCode =
  /** No such staged update in this repository (404). */
  | 'STAGED_NOT_FOUND'
  /** It was published or cancelled, or has expired and been closed (409). */
  | 'STAGED_CLOSED'
  /** Its expiry has passed (410). */
  | 'STAGED_EXPIRED'
  /** The repository moved on since it was staged: a newer root or version of its role (409). */
  | 'STAGED_OUTDATED'
  /** A signature by a key that may not sign it, or that does not verify over its bytes (400). */
  | 'SIGNATURE_REFUSED'
  /** The update cannot be staged as given (400). */
  | 'STAGE_REFUSED';

export class StagedUpdateError extends CodedError<StagedErrorCode> {
  override name = 'StagedUpdateError';
}

export const DEFAULT_STAGED_EXPIRY_MS = 7 * 86_400_000;
/** Pending staged updates one repository may have at a time. */
export const MAX_PENDING_PER_REPOSITORY = 100;

export interface StageRequest {
  role: string;
  /** The metadata file (`signed` and zero or more `signatures`), as uploaded. */
  bytes: Buffer;
  /** Lifetime; default the server's setting. */
  expiresInMs?: number | undefined;
}

export interface StagedView {
  id: string;
  gun: string;
  role: string;
  version: number;
  /** `expired` also for a pending item whose expiry has passed and was not closed yet. */
  state: StagedState;
  stagedBy: string;
  createdAt: string;
  expiresAt: string;
  closedAt: string | null;
  closedBy: string | null;
  /** SHA-256 (hex) of the canonical `signed` bytes every signature must cover. */
  signedSha256: string;
  /** Key IDs that signed, one per key. */
  signatures: { keyid: string; method: string }[];
  /** Pending only: where each threshold stands. */
  thresholds: ThresholdStatus[] | null;
  /** Pending only: every key ID that may still sign a threshold not yet met. */
  pendingKeyIds: string[];
  /** Why a pending item can no longer be published, if so. */
  outdated: string | null;
  /** With `?full` and on single reads: the staged `signed` part. */
  signed?: unknown;
}

export interface SignResult {
  staged: StagedView;
  /** Key IDs whose signatures this request added. */
  added: string[];
  /** Key IDs that had signed already: counted once. */
  alreadySigned: string[];
  /** The files stored when this request met the last threshold. */
  published: { role: string; version: number }[] | null;
}

/** The staged file as it would be published: `{"signed":…,"signatures":[…]}`. */
function assemble(signed: Buffer, signatures: readonly SignatureEntry[]): Buffer {
  const entries = signatures.map((s) => `{"keyid":${JSON.stringify(s.keyid)},"method":${JSON.stringify(s.method)},"sig":${JSON.stringify(s.sig)}}`);
  return Buffer.concat([Buffer.from('{"signed":'), signed, Buffer.from(`,"signatures":[${entries.join(',')}]}`)]);
}

function stagedFile(row: StagedRow, signatures: readonly SignatureEntry[] = row.signatures): SignedFile {
  return parseSignedFile(row.role, assemble(row.signed, signatures));
}

function allKeys(thresholds: readonly StagedThreshold[]): Map<string, VerifierKey> {
  const out = new Map<string, VerifierKey>();
  for (const t of thresholds) for (const [id, key] of t.keys) out.set(id, key);
  return out;
}

/**
 * Add `entries` to `existing`: each must be a valid signature over `message` by a key some
 * threshold allows. One signature per key: a key that signed already is counted once.
 */
function mergeSignatures(
  message: Buffer,
  existing: readonly SignatureEntry[],
  entries: readonly SignatureEntry[],
  thresholds: readonly StagedThreshold[],
): { signatures: SignatureEntry[]; added: string[]; alreadySigned: string[] } {
  const keys = allKeys(thresholds);
  // One signature per key and key ID: a key listed under two IDs (a renewed certificate in a
  // rotation) signs once under each, and each threshold counts it once.
  const signedAs = (key: VerifierKey, keyid: string) => `${key.identity}\u0000${keyid}`;
  const seen = new Set<string>();
  for (const e of existing) {
    const key = verifyEntry(message, e, keys);
    if (key) seen.add(signedAs(key, e.keyid));
  }
  const signatures = [...existing];
  const added: string[] = [];
  const alreadySigned: string[] = [];
  for (const raw of entries) {
    const entry = { keyid: raw.keyid, method: raw.method.toLowerCase(), sig: raw.sig };
    if (!keys.has(entry.keyid)) {
      throw new StagedUpdateError('SIGNATURE_REFUSED', `key ${entry.keyid} may not sign this update (it is not among the keys of any of its thresholds)`);
    }
    const key = verifyEntry(message, entry, keys);
    if (!key) {
      throw new StagedUpdateError(
        'SIGNATURE_REFUSED',
        `the signature by key ${entry.keyid} does not verify over the staged bytes (sha256 ${sha256Hex(message)})`,
      );
    }
    if (seen.has(signedAs(key, entry.keyid))) {
      alreadySigned.push(entry.keyid);
      continue;
    }
    seen.add(signedAs(key, entry.keyid));
    signatures.push(entry);
    added.push(entry.keyid);
  }
  return { signatures, added, alreadySigned };
}

/** Why `row` no longer applies to the repository, or null. */
function outdatedReason(row: Pick<StagedRow, 'role' | 'version' | 'baseRootVersion'>, state: RepositoryState): string | null {
  const rootVersion = state.root?.version ?? 0;
  if (rootVersion !== row.baseRootVersion) {
    return `the repository moved on: root version ${rootVersion} is current, the update was staged on root version ${row.baseRootVersion}`;
  }
  const latest = state.latestVersions.get(row.role) ?? 0;
  if (latest >= row.version) return `the repository moved on: ${row.role} version ${latest} was published since`;
  return null;
}

function checkOpen(row: StagedRow, nowMs: number): void {
  if (row.state === 'expired') throw new StagedUpdateError('STAGED_EXPIRED', `staged update ${row.id} expired at ${row.expiresAt.toISOString()}`);
  if (row.state !== 'pending') throw new StagedUpdateError('STAGED_CLOSED', `staged update ${row.id} is ${row.state}`);
  if (row.expiresAt.getTime() < nowMs) throw new StagedUpdateError('STAGED_EXPIRED', `staged update ${row.id} expired at ${row.expiresAt.toISOString()}`);
}

async function stateFor(ctx: ServiceContext, stores: Stores, gun: string, role: string): Promise<RepositoryState> {
  return loadRepositoryState(stores.metadata, ctx.cache, gun, ancestorsOf([role]));
}

function view(row: StagedRow, nowMs: number, live: { state: RepositoryState; gun: string } | null, withSigned: boolean): StagedView {
  const expired = row.state === 'pending' && row.expiresAt.getTime() < nowMs;
  const out: StagedView = {
    id: row.id,
    gun: row.gun,
    role: row.role,
    version: row.version,
    state: expired ? 'expired' : row.state,
    stagedBy: row.stagedBy,
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
    closedAt: row.closedAt?.toISOString() ?? null,
    closedBy: row.closedBy,
    signedSha256: sha256Hex(row.signed),
    signatures: row.signatures.map((s) => ({ keyid: s.keyid, method: s.method })),
    thresholds: null,
    pendingKeyIds: [],
    outdated: null,
  };
  if (withSigned) out.signed = JSON.parse(row.signed.toString('utf8')) as unknown;
  if (row.state === 'pending' && live) {
    out.outdated = outdatedReason(row, live.state);
    try {
      const thresholds = stagedThresholds(stagedFile(row), live.state, live.gun, nowMs);
      out.thresholds = thresholdStatus(row.signed, row.signatures, thresholds);
      out.pendingKeyIds = [...new Set(out.thresholds.filter((t) => t.needed > 0).flatMap((t) => t.pendingKeyIds))].sort();
    } catch (e) {
      out.outdated ??= `the repository moved on: ${(e as Error).message}`;
    }
  }
  return out;
}

/** Stage `request`: checked like any update except for its missing signatures; stored pending. */
export async function stageUpdate(ctx: ServiceContext, gun: string, request: StageRequest, actor: Actor): Promise<StagedView> {
  const role = request.role;
  if (!isValidRole(role)) throw new InvalidRoleError(role);
  if (role !== 'root' && role !== 'targets' && !isDelegationRole(role)) {
    throw new StagedUpdateError('STAGE_REFUSED', `${role} cannot be staged: stage root, targets or a delegation (Signet signs the snapshot and timestamp)`);
  }
  const file = parseSignedFile(role, request.bytes);
  const message = file.message();
  const expiresInMs = request.expiresInMs ?? ctx.expiries.stagedMs ?? DEFAULT_STAGED_EXPIRY_MS;
  return withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      const pending = await stores.staged.list({ gun, states: ['pending'], limit: MAX_PENDING_PER_REPOSITORY });
      if (pending.length >= MAX_PENDING_PER_REPOSITORY) {
        throw new StagedUpdateError('STAGE_REFUSED', `${gun} already has ${MAX_PENDING_PER_REPOSITORY} pending staged updates: publish or cancel some first`);
      }
      const state = await stateFor(ctx, stores, gun, role);
      const nowMs = ctx.now();
      const thresholds = stagedThresholds(file, state, gun, nowMs);
      checkReachable(role, thresholds);
      // Everything but the thresholds, exactly as an update is checked.
      validateUpdate([file], state, await ctx.keys.signingKeys(stores, gun), {
        gun,
        nowMs,
        snapshotExpiryMs: ctx.expiries.snapshotMs,
        timestampExpiryMs: ctx.expiries.timestampMs,
        skipThresholds: true,
      });
      const { signatures } = mergeSignatures(message, [], file.signatures, thresholds);
      if (thresholdStatus(message, signatures, thresholds).every((t) => t.needed === 0)) {
        throw new StagedUpdateError('STAGE_REFUSED', `the ${role} file already meets every threshold: publish it as a normal update`);
      }
      const id = randomUUID();
      await stores.staged.insert({
        id,
        gun,
        role,
        version: file.version,
        signed: message,
        signatures,
        baseRootVersion: state.root?.version ?? 0,
        stagedBy: actor.subject,
        createdAt: new Date(nowMs),
        expiresAt: new Date(nowMs + expiresInMs),
      });
      await stores.audit.append(gun, 'staged-create', actor, { id, role, version: file.version, signedBy: signatures.map((s) => s.keyid) });
      const row = (await stores.staged.get(gun, id))!;
      return view(row, nowMs, { state, gun }, true);
    },
    { changesMetadata: false },
  );
}

export async function getStaged(ctx: ServiceContext, gun: string, id: string): Promise<StagedView> {
  const row = await ctx.stores.staged.get(gun, id);
  if (!row) throw new StagedUpdateError('STAGED_NOT_FOUND', `no staged update ${id} in ${gun}`);
  const state = row.state === 'pending' ? await stateFor(ctx, ctx.stores, gun, row.role) : null;
  return view(row, ctx.now(), state ? { state, gun } : null, true);
}

export const MAX_LIST = 1000;

/** Staged updates of one repository, or of all; pending ones (by default) with their thresholds. */
export async function listStaged(
  ctx: ServiceContext,
  q: { gun?: string | undefined; states?: StagedState[] | undefined; limit?: number },
): Promise<StagedView[]> {
  const rows = await ctx.stores.staged.list({ gun: q.gun, states: q.states ?? ['pending'], limit: Math.min(q.limit ?? 100, MAX_LIST) });
  const nowMs = ctx.now();
  const states = new Map<string, RepositoryState>();
  const out: StagedView[] = [];
  for (const row of rows) {
    let live: { state: RepositoryState; gun: string } | null = null;
    if (row.state === 'pending') {
      const key = `${row.gun}\u0000${row.role}`;
      let state = states.get(key);
      if (!state) states.set(key, (state = await stateFor(ctx, ctx.stores, row.gun, row.role)));
      live = { state, gun: row.gun };
    }
    out.push(view(row, nowMs, live, false));
  }
  return out;
}

/**
 * Add signatures to a pending staged update. When they meet every threshold, the update is
 * validated in full and published through the normal update path, in this transaction.
 */
export async function addSignatures(ctx: ServiceContext, gun: string, id: string, entries: readonly SignatureEntry[], actor: Actor): Promise<SignResult> {
  return withRepositoryLock(ctx, gun, async (stores) => {
    const row = await stores.staged.get(gun, id);
    if (!row) throw new StagedUpdateError('STAGED_NOT_FOUND', `no staged update ${id} in ${gun}`);
    const nowMs = ctx.now();
    checkOpen(row, nowMs);
    const state = await stateFor(ctx, stores, gun, row.role);
    const outdated = outdatedReason(row, state);
    if (outdated) throw new StagedUpdateError('STAGED_OUTDATED', `staged update ${id} can no longer be published: ${outdated}`);
    let thresholds: StagedThreshold[];
    try {
      thresholds = stagedThresholds(stagedFile(row), state, gun, nowMs);
    } catch (e) {
      throw new StagedUpdateError('STAGED_OUTDATED', `staged update ${id} can no longer be published: ${(e as Error).message}`, { cause: e });
    }
    const { signatures, added, alreadySigned } = mergeSignatures(row.signed, row.signatures, entries, thresholds);
    if (added.length === 0) return { staged: view(row, nowMs, { state, gun }, false), added, alreadySigned, published: null };
    await stores.staged.setSignatures(id, signatures);
    await stores.audit.append(gun, 'staged-sign', actor, { id, role: row.role, version: row.version, keyIds: added });
    let published: SignResult['published'] = null;
    if (thresholdStatus(row.signed, signatures, thresholds).every((t) => t.needed === 0)) {
      // The normal update path, in full: a failure here rolls the signatures back too.
      const result = await applyUpdate(ctx, stores, gun, [stagedFile(row, signatures)], actor, { staged: id });
      await stores.staged.close(id, 'published', actor.subject, new Date(nowMs));
      await stores.audit.append(gun, 'staged-publish', actor, { id, role: row.role, version: row.version, stored: result.stored });
      published = result.stored;
    }
    const updated = (await stores.staged.get(gun, id))!;
    const after = published ? await stateFor(ctx, stores, gun, row.role) : state;
    return { staged: view(updated, nowMs, { state: after, gun }, false), added, alreadySigned, published };
  });
}

export async function cancelStaged(ctx: ServiceContext, gun: string, id: string, actor: Actor): Promise<StagedView> {
  return withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      const row = await stores.staged.get(gun, id);
      if (!row) throw new StagedUpdateError('STAGED_NOT_FOUND', `no staged update ${id} in ${gun}`);
      if (row.state !== 'pending') throw new StagedUpdateError('STAGED_CLOSED', `staged update ${id} is ${row.state}`);
      const nowMs = ctx.now();
      await stores.staged.close(id, 'cancelled', actor.subject, new Date(nowMs));
      await stores.audit.append(gun, 'staged-cancel', actor, { id, role: row.role, version: row.version });
      return view((await stores.staged.get(gun, id))!, nowMs, null, false);
    },
    { changesMetadata: false },
  );
}

/** Close every pending staged update whose expiry has passed, auditing each; returns how many. */
export async function expireStagedUpdates(ctx: ServiceContext, actor: Actor = { subject: 'signet' }): Promise<number> {
  let closed = 0;
  for (;;) {
    const now = new Date(ctx.now());
    const overdue = await ctx.stores.staged.overdue(now, 100);
    if (overdue.length === 0) return closed;
    const before = closed;
    for (const { id, gun } of overdue) {
      const done = await withRepositoryLock(
        ctx,
        gun,
        async (stores) => {
          const row = await stores.staged.get(gun, id);
          if (!row || row.state !== 'pending' || row.expiresAt >= now) return false;
          await stores.staged.close(id, 'expired', actor.subject, now);
          await stores.audit.append(gun, 'staged-expire', actor, { id, role: row.role, version: row.version, expiresAt: row.expiresAt.toISOString() });
          return true;
        },
        { changesMetadata: false },
      );
      if (done) closed++;
    }
    if (overdue.length < 100 || closed === before) return closed;
  }
}
