/**
 * A repository as it was: the timestamp current at a point in time (or a given timestamp
 * version), the snapshot it named and the roles that snapshot listed. For forensics: every file
 * named here can be fetched by checksum.
 */
import { metaSha256Hex } from '../tuf/core/hashes.js';
import type { StoredFileRow } from '../storage/metadata-store.js';
import type { ServiceContext } from './context.js';
import { NotFoundError } from './errors.js';
import { metaEntries } from './repository-state.js';

export interface HistoryFile {
  role: string;
  version: number;
  sha256: string;
  length: number;
  expires: string;
  storedAt: string;
}

export interface RepositoryAt {
  gun: string;
  asOf: string;
  timestamp: HistoryFile;
  snapshot: HistoryFile | null;
  roles: HistoryFile[];
}

export async function repositoryAsOf(
  ctx: ServiceContext,
  gun: string,
  point: { at?: Date | undefined; timestampVersion?: number | undefined },
): Promise<RepositoryAt> {
  const metadata = ctx.stores.metadata;
  const ts =
    point.timestampVersion !== undefined
      ? await metadata.byVersion(gun, 'timestamp', point.timestampVersion)
      : await metadata.latestAsOf(gun, 'timestamp', point.at ?? new Date());
  if (!ts) throw new NotFoundError(`no timestamp of ${gun} at that point`);
  const describe = (row: StoredFileRow): HistoryFile => {
    const file = ctx.cache.parse(row);
    return {
      role: row.role,
      version: row.version,
      sha256: row.sha256,
      length: row.data.length,
      expires: file.signed.expires,
      storedAt: row.createdAt.toISOString(),
    };
  };
  const tsFile = ctx.cache.parse(ts);
  const snapSha = metaSha256Hex(metaEntries(tsFile)['snapshot']?.hashes);
  const snap = snapSha ? await metadata.byChecksum(gun, 'snapshot', snapSha) : null;
  const roles: HistoryFile[] = [];
  if (snap) {
    const wanted = new Map<string, string>();
    for (const [role, entry] of Object.entries(metaEntries(ctx.cache.parse(snap)))) {
      const sha = metaSha256Hex(entry.hashes);
      if (sha) wanted.set(role, sha);
    }
    for (const row of await metadata.byRoleChecksums(gun, wanted)) roles.push(describe(row));
    roles.sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0));
  }
  return { gun, asOf: (point.at ?? ts.createdAt).toISOString(), timestamp: describe(ts), snapshot: snap ? describe(snap) : null, roles };
}
