/**
 * Checks on every file of a repository before it is imported: the stored sha256 matches the
 * bytes, the bytes are a metadata file of the row's role whose `signed.version` is the row's
 * version, and the signatures meet the threshold of the keys that were in force when notary
 * stored it:
 * - root: its own root certificates (self-signed; certificate expiry is not checked for history);
 * - targets, snapshot, timestamp: the root current at that point;
 * - a delegation `targets/…`: its entry in the parent role current at that point.
 * "Current at that point" follows notary's insertion order (row id): within one update notary
 * stores root, then targets roles parents first, then snapshot and timestamp. When the
 * contemporary key source does not verify a file, every other verified version of that source is
 * tried, so history rewritten by rotations is not refused for an ordering detail.
 *
 * Pure: no I/O.
 */
import { sha256Hex } from '../tuf/core/hashes.js';
import {
  parseSignedFile,
  readSigned,
  rootSchema,
  snapshotSchema,
  targetsSchema,
  timestampSchema,
  type RootSigned,
  type SignedFile,
  type TargetsSigned,
} from '../tuf/notary/metadata.js';
import { compareRoleDepth, isDelegationRole, isValidRole, parentRole } from '../tuf/notary/roles.js';
import { meetsThreshold } from '../tuf/core/signatures.js';
import { delegationKeys, rootKeys, rootRoleKeys, VerifierKeyCache, type RoleKeys } from '../tuf/notary/role-keys.js';
import type { SourceFileRow } from './source.js';

export type Verdict = 'verified' | 'unverified' | 'refused';

export interface CheckedFile {
  row: SourceFileRow;
  /** sha256 of the bytes (what Signet stores). */
  sha256: string;
  verdict: Verdict;
  /**
   * Not checked: Signet already holds this exact file (same role, version and sha256), so it is
   * skipped anyway, and as a key source it is as trusted as the rest of Signet's store.
   */
  alreadyPresent?: boolean;
  /** Why it was refused, or why it could not be verified. */
  reason?: string;
}

interface Entry extends CheckedFile {
  file?: SignedFile;
  root?: RootSigned;
  targets?: TargetsSigned;
}

export function label(role: string, version: number): string {
  return `${role} v${version}`;
}

/** The keys a root gives `role`: certificates for root itself, plain keys for the others. */
function keysOfRoot(gun: string, root: RootSigned, role: string, nowMs: number, cache: VerifierKeyCache): RoleKeys | null {
  if (!root.roles[role]) return null;
  // History: certificates that have expired since are still the keys of that time.
  if (role === 'root') return rootKeys(root, gun, { checkExpiry: false, nowMs });
  return role === 'targets' || role === 'snapshot' || role === 'timestamp' ? rootRoleKeys(root, role, cache) : null;
}

function keysOfDelegation(parent: TargetsSigned, role: string, cache: VerifierKeyCache): RoleKeys | null {
  const entry = parent.delegations?.roles?.find((d) => d.name === role);
  if (!entry) return null;
  return delegationKeys(entry.keyids, parent.delegations?.keys ?? {}, entry.threshold, cache);
}

/** Check every stored file of one repository. Returns one result per row, in row order. */
export function checkRepositoryFiles(
  gun: string,
  rows: readonly SourceFileRow[],
  opts: { present?: (role: string, version: number, sha256: string) => boolean; nowMs: number; keyCache?: VerifierKeyCache },
): CheckedFile[] {
  const nowMs = opts.nowMs;
  const cache = opts.keyCache ?? new VerifierKeyCache();
  const entries: Entry[] = rows.map((row) => readRow(row, opts.present));
  const byRole = new Map<string, Entry[]>();
  for (const e of entries) {
    if (e.verdict === 'refused') continue;
    const list = byRole.get(e.row.role) ?? [];
    list.push(e);
    byRole.set(e.row.role, list);
  }
  const keyCache = new Map<Entry, Map<string, RoleKeys | null>>();
  const keysOf = (source: Entry, role: string): RoleKeys | null => {
    let perRole = keyCache.get(source);
    if (!perRole) keyCache.set(source, (perRole = new Map()));
    if (!perRole.has(role)) {
      perRole.set(role, source.root ? keysOfRoot(gun, source.root, role, nowMs, cache) : source.targets ? keysOfDelegation(source.targets, role, cache) : null);
    }
    return perRole.get(role)!;
  };

  // Roots first: they only depend on themselves.
  for (const e of byRole.get('root') ?? []) {
    if (e.alreadyPresent) continue;
    const keys = keysOf(e, 'root');
    if (!keys || !meetsThreshold(e.file!.message(), e.file!.signatures, keys.keys, keys.threshold)) {
      refuse(e, `not signed by ${keys?.threshold ?? 1} of its own root certificates` + (keys?.problems.length ? ` (${keys.problems.join('; ')})` : ''));
    }
  }
  // Then targets roles, parents before children, then snapshot and timestamp.
  const targetsRoles = [...byRole.keys()].filter((r) => r === 'targets' || isDelegationRole(r)).sort(compareRoleDepth);
  for (const role of [...targetsRoles, 'snapshot', 'timestamp']) {
    const sourceRole = isDelegationRole(role) ? parentRole(role) : 'root';
    for (const e of byRole.get(role) ?? []) if (!e.alreadyPresent) verifyAgainst(e, sourceRole, byRole.get(sourceRole) ?? [], keysOf);
  }
  return entries.map(({ row, sha256, verdict, reason, alreadyPresent }) => ({
    row,
    sha256,
    verdict,
    ...(reason === undefined ? {} : { reason }),
    ...(alreadyPresent ? { alreadyPresent } : {}),
  }));
}

function refuse(e: Entry, reason: string): void {
  // Signet holds these bytes already: they are skipped, whatever their flaws.
  if (e.alreadyPresent) return;
  e.verdict = 'refused';
  e.reason = reason;
}

function readRow(row: SourceFileRow, present?: (role: string, version: number, sha256: string) => boolean): Entry {
  const sha256 = sha256Hex(row.data);
  const entry: Entry = { row, sha256, verdict: 'verified' };
  const stored = row.sha256?.trim().toLowerCase();
  if (stored && stored !== sha256) {
    refuse(entry, `stored sha256 ${stored.slice(0, 12)}… does not match its bytes (${sha256.slice(0, 12)}…)`);
    return entry;
  }
  if (!isValidRole(row.role)) {
    refuse(entry, `${JSON.stringify(row.role)} is not a valid role name`);
    return entry;
  }
  if (present?.(row.role, row.version, sha256)) {
    entry.alreadyPresent = true;
    // Snapshot and timestamp files give no keys to anything: nothing to read.
    if (row.role === 'snapshot' || row.role === 'timestamp') return entry;
  }
  let file: SignedFile;
  try {
    file = parseSignedFile(row.role, row.data);
  } catch (e) {
    refuse(entry, `unreadable: ${(e as Error).message}`);
    return entry;
  }
  if (file.version !== row.version) {
    refuse(entry, `its bytes say version ${file.version}, the row says ${row.version}`);
    return entry;
  }
  entry.file = file;
  if (row.role === 'root') {
    const r = readSigned(rootSchema, file);
    if (r.ok) entry.root = r.value;
    else refuse(entry, r.reason);
  } else if (row.role === 'snapshot' || row.role === 'timestamp') {
    const r = row.role === 'snapshot' ? readSigned(snapshotSchema, file) : readSigned(timestampSchema, file);
    if (!r.ok) refuse(entry, r.reason);
  } else {
    const r = readSigned(targetsSchema, file);
    if (r.ok) entry.targets = r.value;
    else refuse(entry, r.reason);
  }
  return entry;
}

/**
 * Verify `e` with keys of some version of `sourceRole`: the one current when `e` was stored
 * first, then the others nearest first.
 */
function verifyAgainst(e: Entry, sourceRole: string, sources: readonly Entry[], keysOf: (source: Entry, role: string) => RoleKeys | null): void {
  const name = label(e.row.role, e.row.version);
  if (sources.length === 0) {
    e.verdict = 'unverified';
    e.reason = `no ${sourceRole} is stored to take its keys from`;
    return;
  }
  const ordered = [...sources].sort((a, b) => {
    const before = (x: Entry) => (x.row.id < e.row.id ? 0 : 1);
    return before(a) - before(b) || Math.abs(a.row.id - e.row.id) - Math.abs(b.row.id - e.row.id);
  });
  const contemporary = ordered[0]!;
  let firstFailure: string | null = null;
  let usedUnverified: Entry | null = null;
  for (const source of ordered) {
    if (source.verdict === 'refused') {
      firstFailure ??= `${label(sourceRole, source.row.version)}, whose keys it needs, was refused`;
      continue;
    }
    const keys = keysOf(source, e.row.role);
    if (!keys) {
      firstFailure ??= isDelegationRole(e.row.role)
        ? `${label(sourceRole, source.row.version)} does not delegate ${e.row.role}`
        : `${label(sourceRole, source.row.version)} does not define the ${e.row.role} role`;
      continue;
    }
    if (meetsThreshold(e.file!.message(), e.file!.signatures, keys.keys, keys.threshold)) {
      if (source.verdict === 'verified') {
        e.verdict = 'verified';
        return;
      }
      usedUnverified ??= source;
      continue;
    }
    firstFailure ??= `fewer than ${keys.threshold} valid signatures from the ${e.row.role} keys of ${label(sourceRole, source.row.version)}`;
  }
  if (usedUnverified) {
    e.verdict = 'unverified';
    e.reason = `signed by keys of ${label(sourceRole, usedUnverified.row.version)}, which is itself unverified`;
    return;
  }
  refuse(e, firstFailure ?? `${name}: no version of ${sourceRole} verifies it (current then: v${contemporary.row.version})`);
}
