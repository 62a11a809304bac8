/**
 * What a repository currently is: the current timestamp, the snapshot it references, and the
 * root and targets roles that snapshot lists (notary's TUFMetaStorage chain).
 */
import { metaSha256Hex } from '../tuf/core/hashes.js';
import type { SignedFile } from '../tuf/notary/metadata.js';
import { isTargetsRole } from '../tuf/notary/roles.js';
import type { RepositoryState } from '../tuf/notary/validate-update.js';
import type { MetadataStore, StoredFileRow } from '../storage/metadata-store.js';
import type { ParsedFileCache } from './metadata-cache.js';

export interface CurrentChain {
  timestamp: { row: StoredFileRow; file: SignedFile };
  snapshot: { row: StoredFileRow; file: SignedFile } | null;
}

type MetaEntries = Record<string, { hashes?: Record<string, string> }>;

export function metaEntries(file: SignedFile): MetaEntries {
  const meta = (file.signed as { meta?: unknown }).meta;
  return meta && typeof meta === 'object' ? (meta as MetaEntries) : {};
}

/** The current timestamp and the snapshot it references, or null for an unknown repository. */
export async function currentChain(metadata: MetadataStore, cache: ParsedFileCache, gun: string): Promise<CurrentChain | null> {
  const tsRow = await metadata.latest(gun, 'timestamp');
  if (!tsRow) return null;
  const timestamp = { row: tsRow, file: cache.parse(tsRow) };
  const snapshotSha = metaSha256Hex(metaEntries(timestamp.file)['snapshot']?.hashes);
  const snapRow = snapshotSha ? await metadata.byChecksum(gun, 'snapshot', snapshotSha) : null;
  return { timestamp, snapshot: snapRow ? { row: snapRow, file: cache.parse(snapRow) } : null };
}

/** The stored file a snapshot lists for `role` (root, targets, delegations). */
export async function roleInSnapshot(metadata: MetadataStore, gun: string, snapshot: SignedFile, role: string): Promise<StoredFileRow | null> {
  const sha = metaSha256Hex(metaEntries(snapshot)[role]?.hashes);
  return sha ? metadata.byChecksum(gun, role, sha) : null;
}

/** The stored file the current snapshot lists for `role` (root, targets, delegations). */
export async function currentRoleFile(metadata: MetadataStore, cache: ParsedFileCache, gun: string, role: string): Promise<StoredFileRow | null> {
  const chain = await currentChain(metadata, cache, gun);
  return chain?.snapshot ? roleInSnapshot(metadata, gun, chain.snapshot.file, role) : null;
}

/**
 * The repository's state for validation. `roles` limits which targets roles are read (root is
 * always read): an update needs only the parents of the delegations it uploads, and skipping
 * the rest keeps a large targets file from being read back and parsed on every update.
 */
export async function loadRepositoryState(metadata: MetadataStore, cache: ParsedFileCache, gun: string, roles?: ReadonlySet<string>): Promise<RepositoryState> {
  const versions = await metadata.latestVersions(gun);
  const chain = await currentChain(metadata, cache, gun);
  const state = { root: null as SignedFile | null, snapshot: null as SignedFile | null, targets: new Map<string, SignedFile>(), latestVersions: versions };
  if (!chain?.snapshot) return state;
  state.snapshot = chain.snapshot.file;
  const wanted = new Map<string, string>();
  for (const [role, entry] of Object.entries(metaEntries(chain.snapshot.file))) {
    const sha = metaSha256Hex(entry.hashes);
    if (sha && (role === 'root' || (isTargetsRole(role) && (!roles || roles.has(role))))) wanted.set(role, sha);
  }
  for (const row of await metadata.byRoleChecksums(gun, wanted)) {
    const file = cache.parse(row);
    if (row.role === 'root') state.root = file;
    else state.targets.set(row.role, file);
  }
  return state;
}

/**
 * The targets roles a client would reach: `targets`, then every role delegated by one already
 * reached. A snapshot the server signs carries over the entries of earlier updates, including
 * one for a delegation its parent has since dropped, so the snapshot alone over-reports them.
 */
export function reachableTargetsRoles(state: RepositoryState): SignedFile[] {
  const out: SignedFile[] = [];
  const seen = new Set<string>();
  const queue = ['targets'];
  while (queue.length) {
    const role = queue.shift()!;
    const file = state.targets.get(role);
    if (seen.has(role) || !file) continue;
    seen.add(role);
    out.push(file);
    const delegations = (file.signed as { delegations?: { roles?: { name?: unknown }[] } }).delegations;
    for (const d of delegations?.roles ?? []) if (typeof d.name === 'string') queue.push(d.name);
  }
  return out;
}
