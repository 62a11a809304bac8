/**
 * The Notary v1 client workflow for one repository (GUN): update the local trusted state from
 * a trust server with the trusted set's rules (src/tuf/notary/trusted-set.ts, shared with the
 * server and the gate), then answer what is signed.
 *
 * Update order: trusted root (cached, or fetched once and checked against the pins) → each next
 * root version until the server has no more (`{v}.root.json`) → timestamp → the snapshot it
 * lists → `targets` and every delegation the snapshot lists, parents first, each fetched by the
 * sha256 its parent gives (or taken from the cache when it matches). Every file must verify:
 * unlike notary, which skips a delegation whose signatures fail, a repository with any file that
 * does not verify is refused, so a tampered delegation cannot be silently ignored.
 * Only when everything verified is the cache replaced.
 */
import { sha256Hex } from '../tuf/core/hashes.js';
import { TrustedSet, TrustError } from '../tuf/notary/trusted-set.js';
import { parseRoleFile } from '../tuf/notary/trusted-set.js';
import { rootSchema } from '../tuf/notary/metadata.js';
import { ClientError } from './errors.js';
import { checkPinnedRoot, checkRootSignedByPinnedKeys, type TrustPinning } from './pinning.js';
import type { TrustServer } from './trust-server.js';
import type { MetadataCache } from './trust-store.js';

/** Upper bounds on what one repository may make a client fetch. */
const MAX_ROLES = 10_000;
const MAX_ROOT_ROTATIONS = 1_000;

export interface UpdateOptions {
  /** Load only the delegations this accepts (and `targets`); default all. */
  delegations?: (role: string) => boolean;
}

export interface RepositoryOptions {
  gun: string;
  server: TrustServer;
  store: MetadataCache;
  pinning?: TrustPinning;
  /** The clock, ms since the epoch (tests pass a fixed time). */
  now?: () => number;
}

function metaSha256(meta: { hashes: Record<string, string> } | undefined): string | null {
  const b64 = meta?.hashes['sha256'];
  return b64 ? Buffer.from(b64, 'base64').toString('hex') : null;
}

export class NotaryRepository {
  readonly gun: string;
  readonly server: TrustServer;
  readonly store: MetadataCache;
  private readonly pinning: TrustPinning | undefined;
  private readonly now: () => number;

  constructor(options: RepositoryOptions) {
    this.gun = options.gun;
    this.server = options.server;
    this.store = options.store;
    this.pinning = options.pinning;
    this.now = options.now ?? Date.now;
  }

  nowMs(): number {
    return this.now();
  }

  /** The trusted root to start from: the cached one, else the server's, checked against the pins. */
  private async trustAnchor(scope: 'pull' | 'push'): Promise<{ set: TrustedSet; fresh: boolean; walk: boolean; current?: Buffer }> {
    const nowMs = this.now();
    const cached = this.store.read(this.gun, 'root');
    if (!cached && this.pinning?.rootKeys) {
      // The current root says how far the walk from version 1 goes: no probe past its end.
      const current = await this.server.getRoot(scope);
      if (!current) throw new ClientError('NOT_INITIALIZED', `${this.gun} has no trust data on ${this.server.base.origin}`);
      const version = parseRoleFile('root', current, rootSchema).signed.version;
      const first = version === 1 ? current : await this.server.getRootVersion(1);
      if (!first) throw new ClientError('SERVER', `${this.server.base.origin} serves root v${version} of ${this.gun} but not 1.root.json`);
      const root = parseRoleFile('root', first, rootSchema);
      checkRootSignedByPinnedKeys(this.gun, root.file, root.signed, this.pinning.rootKeys);
      return { set: TrustedSet.fromTrustedRoot(first, { gun: this.gun, nowMs }), fresh: true, walk: false, current };
    }
    if (cached) {
      try {
        return { set: TrustedSet.fromTrustedRoot(cached, { gun: this.gun, nowMs, known: this.store.knownVersions(this.gun) }), fresh: false, walk: true };
      } catch (err) {
        throw new ClientError(
          'TRUST_STORE',
          `the cached root of ${this.gun} in ${this.store.metadataDir(this.gun)} does not verify: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    const root = await this.server.getRoot(scope);
    if (!root) throw new ClientError('NOT_INITIALIZED', `${this.gun} has no trust data on ${this.server.base.origin}`);
    checkPinnedRoot(this.gun, parseRoleFile('root', root, rootSchema).signed, this.pinning, nowMs);
    return { set: TrustedSet.fromTrustedRoot(root, { gun: this.gun, nowMs }), fresh: true, walk: false };
  }

  /**
   * Bring the trusted state up to date with the server and return it. Throws ClientError
   * NOT_INITIALIZED when the server has no trust data for the repository, TrustError when
   * anything it serves does not verify.
   */
  async update(scope: 'pull' | 'push' = 'pull', options: UpdateOptions = {}): Promise<TrustedSet> {
    const { set, fresh, walk, current } = await this.trustAnchor(scope);
    const rootBefore = set.root.file.bytes;
    for (let i = 0; walk && i < MAX_ROOT_ROTATIONS; i++) {
      const next = await this.server.getRootVersion(set.root.signed.version + 1);
      if (!next) break;
      set.updateRoot(next);
    }
    if (current) {
      const last = parseRoleFile('root', current, rootSchema).signed.version;
      if (last - set.root.signed.version > MAX_ROOT_ROTATIONS) throw new ClientError('SERVER', `${this.gun}: more than ${MAX_ROOT_ROTATIONS} root versions`);
      while (set.root.signed.version + 1 < last) {
        const v = set.root.signed.version + 1;
        const next = await this.server.getRootVersion(v);
        if (!next) throw new ClientError('SERVER', `${this.server.base.origin} serves root v${last} of ${this.gun} but not ${v}.root.json`);
        set.updateRoot(next);
      }
      if (set.root.signed.version < last) set.updateRoot(current);
    }
    const timestamp = await this.server.getTimestamp();
    if (!timestamp) {
      if (fresh || !(await this.server.getRoot(scope))) {
        throw new ClientError('NOT_INITIALIZED', `${this.gun} has no trust data on ${this.server.base.origin}`);
      }
      throw new ClientError('SERVER', `${this.server.base.origin} serves a root but no timestamp for ${this.gun}`);
    }
    set.updateTimestamp(timestamp);
    const snapshotMeta = set.timestamp!.signed.meta['snapshot'];
    const snapshot = await this.listedFile('snapshot', snapshotMeta);
    set.updateSnapshot(snapshot);

    const loaded = new Map<string, Buffer>([['snapshot', snapshot]]);
    const queue = ['targets'];
    while (queue.length > 0) {
      const role = queue.shift()!;
      const meta = set.snapshot!.signed.meta[role];
      if (!meta) {
        if (role === 'targets') throw new TrustError('NOT_LISTED', 'targets', 'the snapshot does not list it');
        continue; // delegated but never published: nothing signed there yet
      }
      if (loaded.size > MAX_ROLES) throw new ClientError('SERVER', `${this.gun} lists more than ${MAX_ROLES} roles`);
      const bytes = await this.listedFile(role, meta);
      set.updateTargets(role, bytes);
      loaded.set(role, bytes);
      for (const child of set.delegationsOf(role)) {
        if (options.delegations && !options.delegations(child.name)) continue;
        if (!loaded.has(child.name) && !queue.includes(child.name)) queue.push(child.name);
      }
    }

    // Everything verified: replace what changed in the cache.
    if (fresh || !set.root.file.bytes.equals(rootBefore)) this.store.write(this.gun, 'root', set.root.file.bytes);
    const keep = (role: string, bytes: Buffer) => {
      if (!this.store.read(this.gun, role)?.equals(bytes)) this.store.write(this.gun, role, bytes);
    };
    keep('timestamp', timestamp);
    for (const [role, bytes] of loaded) keep(role, bytes);
    // Roles the repository no longer lists are forgotten; listed ones not loaded this time are kept.
    for (const role of this.store.cachedDelegations(this.gun)) {
      if (!set.snapshot!.signed.meta[role]) this.store.remove(this.gun, role);
    }
    return set;
  }

  /** A file its parent lists: from the cache when the bytes match, else from the server. */
  private async listedFile(role: string, meta: { length: number; hashes: Record<string, string> } | undefined): Promise<Buffer> {
    const sha = metaSha256(meta);
    if (!meta || !sha) {
      // The trusted set names the problem precisely (not listed / no checksum).
      return this.store.read(this.gun, role) ?? Buffer.alloc(0);
    }
    const cached = this.store.read(this.gun, role);
    if (cached && cached.length === meta.length && sha256Hex(cached) === sha) return cached;
    return this.server.getListedFile(role, sha, meta.length);
  }
}
