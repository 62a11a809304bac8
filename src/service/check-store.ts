/**
 * Integrity check of the whole store, for operators (after a crash, a restore, an upgrade):
 * - every row's sha256 matches its bytes, and its bytes parse with the stored version;
 * - root versions of a repository are contiguous from 1;
 * - every timestamp points (by hash, length and sha512) to a stored snapshot;
 * - every snapshot entry for root and targets points to a stored file with matching hashes and
 *   length (a missing delegation file is reported as a warning: clients skip such roles);
 * - the repository as a client reads it verifies: the root chain from the oldest stored root
 *   through every rotation, then the current timestamp, snapshot, targets and the delegations
 *   targets reaches, each signed by its role's keys (the trusted set). Expiry is not an
 *   integrity fault and is left to `signet expiring`.
 */
import { checkHashes, metaSha256Hex, sha256Hex } from '../tuf/core/hashes.js';
import { parseSignedFile, type SignedFile } from '../tuf/notary/metadata.js';
import { TrustError, TrustedSet } from '../tuf/notary/trusted-set.js';
import type { StoredFileRow } from '../storage/metadata-store.js';
import type { ServiceContext } from './context.js';
import { metaEntries } from './repository-state.js';

export interface CheckProblem {
  gun: string;
  severity: 'error' | 'warning';
  message: string;
}

export interface CheckReport {
  repositories: number;
  rows: number;
  errors: number;
  warnings: number;
  problems: CheckProblem[];
}

export async function checkStore(ctx: ServiceContext, onlyGun?: string): Promise<CheckReport> {
  const metadata = ctx.stores.metadata;
  const guns = onlyGun ? [onlyGun] : await metadata.repositories();
  const report: CheckReport = { repositories: 0, rows: 0, errors: 0, warnings: 0, problems: [] };
  const add = (gun: string, severity: CheckProblem['severity'], message: string) => {
    report.problems.push({ gun, severity, message });
    report[severity === 'error' ? 'errors' : 'warnings']++;
  };

  for (const gun of guns) {
    const rows = await metadata.allOf(gun);
    if (rows.length === 0) {
      // Asked about by name: "0 errors" would read as "that repository is sound".
      if (onlyGun !== undefined) add(gun, 'error', 'no such repository: nothing is stored under this name');
      continue;
    }
    report.repositories++;
    report.rows += rows.length;
    const bySha = new Map<string, StoredFileRow>();
    const parsed = new Map<StoredFileRow, SignedFile>();
    for (const row of rows) {
      const label = `${row.role} v${row.version}`;
      if (sha256Hex(row.data) !== row.sha256) add(gun, 'error', `${label}: stored sha256 does not match its bytes`);
      bySha.set(`${row.role}:${sha256Hex(row.data)}`, row);
      try {
        const file = parseSignedFile(row.role, row.data);
        if (file.version !== row.version) add(gun, 'error', `${label}: its bytes say version ${file.version}`);
        parsed.set(row, file);
      } catch (e) {
        add(gun, 'error', `${label}: unreadable (${(e as Error).message})`);
      }
    }
    const rootVersions = rows.filter((r) => r.role === 'root').map((r) => r.version);
    // A new repository may start at root version 1 or 2; from there every version must exist.
    if (rootVersions[0] !== undefined && rootVersions[0] > 2) add(gun, 'error', `root history starts at version ${rootVersions[0]}`);
    rootVersions.forEach((v, i) => {
      const expected = rootVersions[0]! + i;
      if (v !== expected) add(gun, 'error', `root versions are not contiguous: expected ${expected}, found ${v}`);
    });
    if (rootVersions.length === 0) add(gun, 'error', 'no root stored');

    const follow = (
      from: string,
      entry: { hashes?: Record<string, string>; length?: number } | undefined,
      role: string,
      severity: CheckProblem['severity'],
    ) => {
      const sha = metaSha256Hex(entry?.hashes);
      const target = sha ? bySha.get(`${role}:${sha}`) : undefined;
      if (!target) {
        add(gun, severity, `${from}: lists ${role} ${sha ? sha.slice(0, 12) + '…' : '(no sha256)'} which is not stored`);
        return;
      }
      const mismatch = checkHashes(target.data, entry!.hashes ?? {});
      if (mismatch) add(gun, 'error', `${from}: entry for ${role}: ${mismatch}`);
      if (entry!.length !== undefined && entry!.length !== target.data.length) {
        add(gun, 'error', `${from}: entry for ${role}: length ${entry!.length} but the file has ${target.data.length} bytes`);
      }
    };
    const timestamps = rows.filter((r) => r.role === 'timestamp');
    if (timestamps.length === 0) add(gun, 'error', 'no timestamp stored');
    for (const row of timestamps) {
      const file = parsed.get(row);
      if (file) follow(`timestamp v${row.version}`, metaEntries(file)['snapshot'], 'snapshot', 'error');
    }
    for (const row of rows.filter((r) => r.role === 'snapshot')) {
      const file = parsed.get(row);
      if (!file) continue;
      for (const [role, entry] of Object.entries(metaEntries(file))) {
        follow(`snapshot v${row.version}`, entry, role, role === 'root' || role === 'targets' ? 'error' : 'warning');
      }
    }
    const refused = verifyAsClient(gun, rows, bySha, ctx.now());
    if (refused) add(gun, 'error', `the current metadata does not verify as a client reads it: ${refused.message} [${refused.code}]`);
  }
  return report;
}

/**
 * Walk the current metadata as a client does, from the oldest stored root. Returns why it is
 * refused, or null. Files missing along the way are reported by the checks above.
 */
function verifyAsClient(gun: string, rows: readonly StoredFileRow[], bySha: ReadonlyMap<string, StoredFileRow>, nowMs: number): TrustError | null {
  const roots = rows.filter((r) => r.role === 'root');
  const timestamp = rows.filter((r) => r.role === 'timestamp').at(-1);
  if (roots.length === 0 || !timestamp) return null;
  const listed = (role: string, file: SignedFile | undefined) => {
    const sha = metaSha256Hex(metaEntries(file as SignedFile)[role]?.hashes);
    return sha ? bySha.get(`${role}:${sha}`) : undefined;
  };
  try {
    const set = TrustedSet.fromTrustedRoot(roots[0]!.data, { gun, nowMs, checkExpiry: false });
    for (const root of roots.slice(1)) set.updateRoot(root.data);
    const ts = set.updateTimestamp(timestamp.data);
    const snapshotRow = listed('snapshot', ts.file);
    if (!snapshotRow) return null;
    const snapshot = set.updateSnapshot(snapshotRow.data);
    const targetsRow = listed('targets', snapshot.file);
    if (!targetsRow) return null;
    set.updateTargets('targets', targetsRow.data);
    // Delegations in the order a client meets them, each once; one the snapshot does not list
    // (or that is not stored) is skipped, as a client skips it.
    const queue = set.delegationsOf('targets').map((d) => d.name);
    const seen = new Set<string>();
    while (queue.length > 0) {
      const role = queue.shift()!;
      if (seen.has(role)) continue;
      seen.add(role);
      const row = listed(role, snapshot.file);
      if (!row) continue;
      set.updateTargets(role, row.data);
      queue.push(...set.delegationsOf(role).map((d) => d.name));
    }
    return null;
  } catch (e) {
    if (e instanceof TrustError) return e;
    throw e;
  }
}
