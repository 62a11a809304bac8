/**
 * A repository in a few facts, for the inspector's list: how many tags are signed, by whom, when
 * it last changed, and the nearest expiry of a role that needs its owner to re-sign it. Written
 * in the transaction of every change (withRepositoryLock), so the list never reads metadata.
 */
import { metaSha256Hex } from '../tuf/core/hashes.js';
import { readSigned, rootSchema, targetsSchema, type SignedFile } from '../tuf/notary/metadata.js';
import type { RepositoryState } from '../tuf/notary/validate-update.js';
import type { MetadataStore, StoredFileRow } from '../storage/metadata-store.js';
import type { Stores } from '../storage/stores.js';
import type { RepositorySummaryRow, RoleExpiry } from '../storage/summary-store.js';
import type { ParsedFileCache } from './metadata-cache.js';
import { currentChain, metaEntries, reachableTargetsRoles } from './repository-state.js';

export interface CurrentFile {
  row: StoredFileRow;
  file: SignedFile;
}

export interface CurrentFiles {
  timestamp: CurrentFile;
  snapshot: CurrentFile | null;
  root: CurrentFile | null;
  /** Every targets role the snapshot lists, reachable or not. */
  targets: Map<string, CurrentFile>;
  /** The targets roles a client reaches from `targets`, parents first. */
  reachable: SignedFile[];
}

/** The current files of a repository with the rows they came from; null when it has none. */
export async function currentFiles(metadata: MetadataStore, cache: ParsedFileCache, gun: string): Promise<CurrentFiles | null> {
  const chain = await currentChain(metadata, cache, gun);
  if (!chain) return null;
  const out: CurrentFiles = { timestamp: chain.timestamp, snapshot: chain.snapshot, root: null, targets: new Map(), reachable: [] };
  if (!chain.snapshot) return out;
  const wanted = new Map<string, string>();
  for (const [role, entry] of Object.entries(metaEntries(chain.snapshot.file))) {
    const sha = metaSha256Hex(entry.hashes);
    if (sha) wanted.set(role, sha);
  }
  for (const row of await metadata.byRoleChecksums(gun, wanted)) {
    const current = { row, file: cache.parse(row) };
    if (row.role === 'root') out.root = current;
    else if (row.role === 'targets' || row.role.startsWith('targets/')) out.targets.set(row.role, current);
  }
  const state: RepositoryState = {
    root: out.root?.file ?? null,
    snapshot: chain.snapshot.file,
    targets: new Map([...out.targets].map(([role, f]) => [role, f.file])),
    latestVersions: new Map(),
  };
  out.reachable = reachableTargetsRoles(state);
  return out;
}

/** How a signer is named to people: docker's delegation name, `targets` as the repository admin. */
export const signerName = (role: string) => (role === 'targets' ? 'Repo Admin' : role.replace(/^targets\//, ''));

/** The roles whose owner must re-sign them before they expire (the server re-signs the rest). */
export function ownerSignedExpiries(files: CurrentFiles, serverSnapshotKeyIds: ReadonlySet<string>): RoleExpiry[] {
  const out: RoleExpiry[] = [];
  const add = (f: SignedFile) => out.push({ role: f.role, version: f.version, expires: f.signed.expires });
  if (files.root) add(files.root.file);
  for (const f of files.reachable) add(f);
  if (files.snapshot && files.root) {
    const root = readSigned(rootSchema, files.root.file);
    const snapshotKeys = root.ok ? (root.value.roles['snapshot']?.keyids ?? []) : [];
    if (!snapshotKeys.some((k) => serverSnapshotKeyIds.has(k))) add(files.snapshot.file);
  }
  return out;
}

export function summarise(gun: string, files: CurrentFiles, serverSnapshotKeyIds: ReadonlySet<string>): RepositorySummaryRow {
  const tags = new Set<string>();
  const signers = new Set<string>();
  for (const f of files.reachable) {
    const t = readSigned(targetsSchema, f);
    const names = t.ok ? Object.keys(t.value.targets ?? {}) : [];
    for (const name of names) tags.add(name);
    if (names.length > 0) signers.add(signerName(f.role));
  }
  let lastChange = files.root?.row.createdAt ?? files.timestamp.row.createdAt;
  for (const f of [files.root, ...files.targets.values()]) if (f && f.row.createdAt > lastChange) lastChange = f.row.createdAt;
  const expiries = ownerSignedExpiries(files, serverSnapshotKeyIds);
  let nearest: RoleExpiry | null = null;
  for (const e of expiries) if (!nearest || Date.parse(e.expires) < Date.parse(nearest.expires)) nearest = e;
  return {
    gun,
    signedTags: tags.size,
    signers: [...signers].sort(),
    lastChange,
    nearestExpiry: nearest ? new Date(nearest.expires) : null,
    nearestRole: nearest?.role ?? null,
    expiries,
  };
}

/** Rewrite one repository's summary from its current files, through `stores` (a transaction or not). */
export async function refreshSummary(stores: Stores, cache: ParsedFileCache, gun: string): Promise<void> {
  const files = await currentFiles(stores.metadata, cache, gun);
  if (!files?.root) {
    await stores.summaries.remove(gun);
    return;
  }
  const snapshotKeys = new Set((await stores.serverKeys.ofRepository(gun)).filter((k) => k.role === 'snapshot').map((k) => k.keyId));
  await stores.summaries.put(summarise(gun, files, snapshotKeys));
}

/** Summarise repositories stored before summaries existed; returns how many. */
export async function backfillSummaries(stores: Stores, cache: ParsedFileCache, batch = 500): Promise<number> {
  let done = 0;
  for (;;) {
    const missing = await stores.summaries.missing(batch);
    if (missing.length === 0) return done;
    let wrote = 0;
    for (const gun of missing) {
      await refreshSummary(stores, cache, gun);
      done++;
      wrote++;
    }
    // A repository with files but no root writes no summary: stop rather than loop on it.
    if (wrote > 0 && (await stores.summaries.missing(batch)).every((g) => missing.includes(g))) return done;
  }
}
