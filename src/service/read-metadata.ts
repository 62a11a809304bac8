/**
 * Read metadata: current roles, by checksum, by version. Reading the current timestamp or
 * snapshot re-signs them first when they have expired (notary's lazy regeneration), so a
 * repository nobody publishes to stays usable as long as the server holds its keys.
 */
import { readSigned, rootSchema } from '../tuf/notary/metadata.js';
import { planResign } from '../tuf/notary/resign.js';
import type { StoredFileRow } from '../storage/metadata-store.js';
import { withRepositoryLock, type ServiceContext } from './context.js';
import { NotFoundError } from './errors.js';
import { currentChain, loadRepositoryState, roleInSnapshot, type CurrentChain } from './repository-state.js';

export interface MetadataResponse {
  data: Buffer;
  lastModified: Date;
}

const notFound = () => new NotFoundError('metadata not found');

export async function readByChecksum(ctx: ServiceContext, gun: string, role: string, sha256: string): Promise<MetadataResponse> {
  // Only sha256 is indexed; 96/128-hex checksums (sha384/sha512) can never be found, as in notary.
  if (sha256.length !== 64) throw notFound();
  const hex = sha256.toLowerCase();
  return immutableRow(ctx, gun, `c:${role}:${hex}`, () => ctx.stores.metadata.byChecksum(gun, role, hex));
}

export async function readByVersion(ctx: ServiceContext, gun: string, role: string, version: number): Promise<MetadataResponse> {
  if (!Number.isSafeInteger(version) || version < 1 || version > 2 ** 31 - 1) throw notFound();
  return immutableRow(ctx, gun, `v:${role}:${version}`, () => ctx.stores.metadata.byVersion(gun, role, version));
}

/** A stored row never changes; only deleting its repository removes it (which invalidates). */
async function immutableRow(ctx: ServiceContext, gun: string, key: string, load: () => Promise<StoredFileRow | null>): Promise<MetadataResponse> {
  let row = ctx.current.checksum(gun, key);
  ctx.metrics.cache.inc({ result: row ? 'hit' : 'miss' });
  if (!row) {
    const version = ctx.current.version(gun);
    row = (await load()) ?? undefined;
    if (!row) throw notFound();
    ctx.current.storeChecksum(gun, version, key, row);
  }
  return { data: row.data, lastModified: row.createdAt };
}

async function cachedChain(ctx: ServiceContext, gun: string): Promise<CurrentChain | null> {
  const hit = ctx.current.chain(gun);
  ctx.metrics.cache.inc({ result: hit !== undefined ? 'hit' : 'miss' });
  if (hit !== undefined) return hit;
  const version = ctx.current.version(gun);
  const chain = await currentChain(ctx.stores.metadata, ctx.cache, gun);
  ctx.current.storeChain(gun, version, chain);
  return chain;
}

export async function readCurrent(ctx: ServiceContext, gun: string, role: string): Promise<MetadataResponse> {
  if (role === 'timestamp' || role === 'snapshot') return readServerSigned(ctx, gun, role);
  let row = ctx.current.role(gun, role);
  if (row === undefined) {
    const version = ctx.current.version(gun);
    const chain = await cachedChain(ctx, gun);
    row = chain?.snapshot ? await roleInSnapshot(ctx.stores.metadata, gun, chain.snapshot.file, role) : null;
    ctx.current.storeRole(gun, version, role, row);
  }
  if (!row) throw notFound();
  return { data: row.data, lastModified: row.createdAt };
}

async function readServerSigned(ctx: ServiceContext, gun: string, role: 'timestamp' | 'snapshot'): Promise<MetadataResponse> {
  let chain = await cachedChain(ctx, gun);
  if (!chain) throw notFound();
  const now = ctx.now();
  if (chain.timestamp.file.isExpired(now) || chain.snapshot?.file.isExpired(now)) {
    chain = (await refreshServerSigned(ctx, gun)).chain ?? chain;
  }
  const picked: StoredFileRow | undefined = role === 'timestamp' ? chain.timestamp.row : chain.snapshot?.row;
  if (!picked) throw notFound();
  return { data: picked.data, lastModified: picked.createdAt };
}

/**
 * Re-sign an expired snapshot (when the server holds its key) and the timestamp, under the
 * repository lock; another process may have done it already, which is then simply read.
 */
export async function refreshServerSigned(ctx: ServiceContext, gun: string, horizonMs = 0) {
  let wrote = false;
  const chain = await withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      const chain = await currentChain(stores.metadata, ctx.cache, gun);
      // Files expiring within the horizon count as expired: the expiry watch re-signs ahead of time.
      const now = ctx.now() + horizonMs;
      if (!chain?.snapshot) return chain;
      if (!chain.timestamp.file.isExpired(now) && !chain.snapshot.file.isExpired(now)) return chain;
      const state = await loadRepositoryState(stores.metadata, ctx.cache, gun);
      const root = state.root ? readSigned(rootSchema, state.root) : null;
      if (!root?.ok) return chain;
      const files = planResign({
        root: root.value,
        timestamp: chain.timestamp.file,
        snapshot: { file: chain.snapshot.file, bytes: chain.snapshot.row.data },
        latestVersions: await stores.metadata.latestVersions(gun),
        serverKeys: await ctx.keys.signingKeys(stores, gun),
        nowMs: ctx.now(),
        horizonMs,
        expiries: ctx.expiries,
      });
      // Nothing due, or not the keys to do it: the stored files are served as they are, and
      // clients then report the expiry.
      if (files.length === 0) return chain;
      for (const f of files) ctx.metrics.signatures.inc({ role: f.role });
      await stores.metadata.insert(gun, files);
      await stores.metadata.announceChange(gun);
      wrote = true;
      return currentChain(stores.metadata, ctx.cache, gun);
    },
    { changesMetadata: false },
  );
  // Only a refresh that wrote something changes what every process should serve.
  if (wrote) ctx.current.invalidate(gun);
  return { chain, wrote };
}

/**
 * The answer to a metadata read if it can be given from memory right now, without I/O; else
 * undefined (the caller then takes the normal path, which also fills the cache).
 */
export function peekMetadata(ctx: ServiceContext, gun: string, read: { role: string; checksum?: string; version?: number }): MetadataResponse | undefined {
  let row: StoredFileRow | null | undefined;
  if (read.checksum !== undefined) {
    row = read.checksum.length === 64 ? ctx.current.checksum(gun, `c:${read.role}:${read.checksum.toLowerCase()}`) : undefined;
  } else if (read.version !== undefined) {
    row = ctx.current.checksum(gun, `v:${read.role}:${read.version}`);
  } else if (read.role === 'timestamp' || read.role === 'snapshot') {
    const chain = ctx.current.chain(gun);
    if (!chain) return undefined;
    const now = ctx.now();
    // Expired server-signed files are re-signed on the normal path.
    if (chain.timestamp.file.isExpired(now) || chain.snapshot?.file.isExpired(now)) return undefined;
    row = read.role === 'timestamp' ? chain.timestamp.row : chain.snapshot?.row;
  } else {
    row = ctx.current.role(gun, read.role);
  }
  return row ? { data: row.data, lastModified: row.createdAt } : undefined;
}
