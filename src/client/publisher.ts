/**
 * Changes to a repository's signed state, made the way docker trust and notary make them:
 * read the trusted state, re-sign the files that change (version + 1, a fresh expiry) with keys
 * from the trust directory, and publish them in one atomic update. The snapshot is signed here
 * when its key is held, else left to the server (docker's default: a server-managed snapshot);
 * the timestamp is always the server's.
 *
 * Conventions kept from docker trust (`cli/trust`, `cli/command/trust`): a new repository gets a
 * server-managed snapshot; a signer NAME is the delegation `targets/NAME` plus its keys in
 * `targets/releases`, both with all paths; a tag is signed into every direct delegation of
 * `targets` whose paths cover it and whose key is held (`targets` itself when there are no
 * delegations); target name = tag, `hashes.sha256` = manifest digest, `length` = manifest size.
 */
import { canonicalKeyId, tufKeyId } from '../tuf/core/keys.js';
import { fileMeta } from '../tuf/core/hashes.js';
import { formatRfc3339 } from '../tuf/core/time.js';
import { signDocument, type DocumentSigner } from '../tuf/notary/generate.js';
import type { DelegationRole, MetadataKey, RootSigned, TargetsSigned } from '../tuf/notary/metadata.js';
import { allowedByDelegation } from '../tuf/notary/delegation-paths.js';
import { parentRole } from '../tuf/notary/roles.js';
import type { TrustedSet } from '../tuf/notary/trusted-set.js';
import { ClientError } from './errors.js';
import type { KeyRing } from './key-ring.js';
import type { NotaryRepository } from './repository.js';
import { rootCertificate, type SigningKey } from './keys/index.js';

const DAY = 86_400_000;
/** notary's default expiries (`client/client.go`, `tuf/data/types.go`). */
export const EXPIRY_MS = { root: 10 * 365 * DAY, targets: 3 * 365 * DAY, snapshot: 3 * 365 * DAY } as const;

export const RELEASES_ROLE = 'targets/releases';
const SIGNER_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** A signer's name, checked as docker checks it. */
export function checkSignerName(name: string): void {
  if (!SIGNER_NAME.test(name) || name.length > 200) {
    throw new ClientError('BAD_INPUT', `signer name ${JSON.stringify(name)} must match ${SIGNER_NAME.source}`);
  }
  if (name === 'releases') throw new ClientError('BAD_INPUT', 'releases is reserved for the tags every signer publishes: choose another signer name');
}

export interface TargetRecord {
  /** `sha256:<hex>` or 64 hex characters. */
  digest: string;
  length: number;
}

export interface InitOptions {
  /** Keep the snapshot key in the trust directory instead of on the server. */
  localSnapshot?: boolean;
  /** Signers to delegate to at once (docker's `targets/NAME` + `targets/releases`). */
  signers?: { name: string; keys: MetadataKey[]; threshold?: number }[];
}

export interface SignResult {
  /** Every role re-signed. */
  roles: string[];
  /** The roles each tag went into. */
  byTag: Map<string, string[]>;
}

function sha256Hex(digest: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest;
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new ClientError('BAD_INPUT', `not a sha256 digest: ${digest}`);
  return hex;
}

function keyEntry(key: { keytype: string; keyval: { public: string } }): MetadataKey {
  return { keytype: key.keytype, keyval: { private: null, public: key.keyval.public } };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** A key signing under a given TUF key ID (a root key signs as its certificate). */
function signingAs(key: SigningKey, keyid: string): DocumentSigner {
  return { sign: (message) => ({ ...key.sign(message), keyid }) };
}

export class Publisher {
  constructor(
    readonly repository: NotaryRepository,
    readonly keys: KeyRing,
  ) {}

  private get gun(): string {
    return this.repository.gun;
  }

  /** The state read last by `state()`, until the next publish. */
  private current: TrustedSet | null | undefined;

  /** The trusted state, fresh from the server, or null when the repository has no trust data yet. */
  async state(): Promise<TrustedSet | null> {
    try {
      this.current = await this.repository.update('push');
    } catch (err) {
      if (!(err instanceof ClientError && err.code === 'NOT_INITIALIZED')) throw err;
      this.current = null;
    }
    return this.current;
  }

  /** The state to change: the one just read, else a fresh one. */
  private async load(): Promise<TrustedSet | null> {
    return this.current !== undefined ? this.current : this.state();
  }

  /** Signers for a role's keys: every held key among `keyIds` (at least one is needed). */
  private async signersFor(role: string, keyIds: readonly string[], keys: Record<string, MetadataKey>): Promise<DocumentSigner[]> {
    const held = this.keys.heldAmong(keyIds, keys);
    if (held.length === 0) throw new ClientError('NO_SIGNING_KEY', `no key in ${this.keys.store.trustDir} can sign ${role} of ${this.gun}`);
    const out: DocumentSigner[] = [];
    for (const id of held) out.push(signingAs(await this.keys.unlock(canonicalKeyId(keys[id]!.keytype, keys[id]!.keyval.public)), id));
    return out;
  }

  private rootSigners(root: RootSigned): Promise<DocumentSigner[]> {
    return this.signersFor('root', root.roles['root']?.keyids ?? [], root.keys);
  }

  private targetsSigners(set: TrustedSet, role: string): Promise<DocumentSigner[]> {
    const root = set.root.signed;
    if (role === 'targets') return this.signersFor(role, root.roles['targets']?.keyids ?? [], root.keys);
    const parent = set.targets(parentRole(role))?.signed;
    const entry = parent?.delegations?.roles?.find((r) => r.name === role);
    if (!parent || !entry) throw new ClientError('BAD_INPUT', `${role} is not delegated in ${this.gun}`);
    return this.signersFor(role, entry.keyids, parent.delegations?.keys ?? {});
  }

  private snapshotHeld(root: RootSigned): boolean {
    return this.keys.heldAmong(root.roles['snapshot']?.keyids ?? [], root.keys).length > 0;
  }

  /** Sign and publish `files` (role → signed object), adding a snapshot when its key is held. */
  private async publish(set: TrustedSet | null, root: RootSigned, files: Map<string, { signed: object; signers: DocumentSigner[] }>): Promise<void> {
    const bytes = new Map<string, Buffer>();
    for (const [role, { signed, signers }] of files) bytes.set(role, signDocument(signed, signers));
    const now = this.repository.nowMs();
    if (this.snapshotHeld(root)) {
      const previous = set?.snapshot?.signed;
      const meta: Record<string, unknown> = { ...(previous?.meta ?? {}) };
      if (!bytes.has('root') && set) meta['root'] = fileMeta(set.root.file.bytes);
      for (const [role, b] of bytes) meta[role] = fileMeta(b);
      const snapshot = { _type: 'Snapshot', expires: formatRfc3339(now + EXPIRY_MS.snapshot), meta, version: (previous?.version ?? 0) + 1 };
      bytes.set('snapshot', signDocument(snapshot, await this.signersFor('snapshot', root.roles['snapshot']?.keyids ?? [], root.keys)));
    }
    this.current = undefined;
    await this.repository.server.publish(bytes);
    // What was just published is trusted: cache it so the next run starts from it.
    for (const [role, b] of bytes) this.repository.store.write(this.gun, role, b);
  }

  private nextTargets(set: TrustedSet | null, role: string): TargetsSigned & Record<string, unknown> {
    const current = set?.targets(role)?.signed;
    const base = current ? clone(current) : { _type: 'Targets' as const, delegations: { keys: {}, roles: [] }, targets: {}, version: 0 };
    return {
      ...base,
      delegations: base.delegations ?? { keys: {}, roles: [] },
      targets: base.targets ?? {},
      version: base.version + 1,
      expires: formatRfc3339(this.repository.nowMs() + EXPIRY_MS.targets),
    } as TargetsSigned & Record<string, unknown>;
  }

  private nextRoot(set: TrustedSet): RootSigned & Record<string, unknown> {
    const root = clone(set.root.signed) as RootSigned & Record<string, unknown>;
    root.version += 1;
    root['expires'] = formatRfc3339(this.repository.nowMs() + EXPIRY_MS.root);
    return root;
  }

  /**
   * Create the repository's trust data: a root key (the first one with role `root` in the trust
   * directory, else a new one), its certificate for the GUN, a targets key, the server's
   * timestamp key, and a server-held snapshot key unless `localSnapshot`.
   */
  async initialize(options: InitOptions = {}): Promise<void> {
    const now = this.repository.nowMs();
    const existingRoot = this.keys.firstWithRole('root');
    const rootKey = existingRoot ? await this.keys.unlock(existingRoot) : await this.keys.create('root', undefined);
    const cert = rootCertificate(rootKey, this.gun, { notBeforeMs: now, notAfterMs: now + EXPIRY_MS.root });
    const targetsKey = await this.keys.create('targets', this.gun);
    const timestampKey = await this.repository.server.serverKey('timestamp');
    const snapshotKey = options.localSnapshot ? (await this.keys.create('snapshot', this.gun)).tufPublic() : await this.repository.server.serverKey('snapshot');
    const entries: [string, MetadataKey][] = [
      [cert.keyId, keyEntry(cert.tufPublic)],
      [targetsKey.keyId, keyEntry(targetsKey.tufPublic())],
      [canonicalKeyId(snapshotKey.keytype, snapshotKey.keyval.public), keyEntry(snapshotKey)],
      [canonicalKeyId(timestampKey.keytype, timestampKey.keyval.public), keyEntry(timestampKey)],
    ];
    const [rootId, targetsId, snapshotId, timestampId] = entries.map(([id]) => id) as [string, string, string, string];
    const root = {
      _type: 'Root' as const,
      consistent_snapshot: false,
      expires: formatRfc3339(now + EXPIRY_MS.root),
      keys: Object.fromEntries(entries),
      roles: {
        root: { keyids: [rootId], threshold: 1 },
        snapshot: { keyids: [snapshotId], threshold: 1 },
        targets: { keyids: [targetsId], threshold: 1 },
        timestamp: { keyids: [timestampId], threshold: 1 },
      },
      version: 1,
    };
    const targets = this.nextTargets(null, 'targets');
    for (const signer of options.signers ?? []) addSignerTo(targets, signer.name, signer.keys, signer.threshold);
    const files = new Map([
      ['root', { signed: root, signers: [signingAs(rootKey, rootId)] }],
      ['targets', { signed: targets, signers: [signingAs(targetsKey, targetsId)] }],
    ]);
    await this.publish(null, root, files);
  }

  /** The roles a tag would be signed into (docker's GetSignableRoles). */
  signableRoles(set: TrustedSet, tag: string): string[] {
    const targets = set.targets('targets')!.signed;
    const delegations = targets.delegations?.roles ?? [];
    if (delegations.length === 0) return ['targets'];
    const keys = targets.delegations?.keys ?? {};
    const roles = delegations.filter((d) => allowedByDelegation(d, tag) && this.keys.heldAmong(d.keyids, keys).length > 0).map((d) => d.name);
    if (roles.length === 0) throw new ClientError('NO_SIGNING_KEY', `no key in ${this.keys.store.trustDir} can sign ${tag} into a delegation of ${this.gun}`);
    return roles;
  }

  /** Sign `tags` (tag → target) into `roles` (default: the signable roles of each tag). */
  async sign(tags: ReadonlyMap<string, TargetRecord>, roles?: readonly string[]): Promise<SignResult> {
    const set = await this.load();
    if (!set) throw new ClientError('NOT_INITIALIZED', `${this.gun} has no trust data on ${this.repository.server.base.origin}`);
    const changed = new Map<string, TargetsSigned & Record<string, unknown>>();
    const byTag = new Map<string, string[]>();
    for (const [tag, target] of tags) {
      const entry = { hashes: { sha256: Buffer.from(sha256Hex(target.digest), 'hex').toString('base64') }, length: target.length };
      const into = roles ?? this.signableRoles(set, tag);
      byTag.set(tag, [...into]);
      for (const role of into) {
        const doc = changed.get(role) ?? this.nextTargets(set, role);
        doc.targets![tag] = entry;
        changed.set(role, doc);
      }
    }
    const files = new Map<string, { signed: object; signers: DocumentSigner[] }>();
    for (const [role, doc] of changed) files.set(role, { signed: doc, signers: await this.targetsSigners(set, role) });
    await this.publish(set, set.root.signed, files);
    return { roles: [...changed.keys()], byTag };
  }

  /** Remove `tags` (all signed tags when empty) from every role that holds them and can be signed. */
  async revoke(tags: readonly string[]): Promise<{ tag: string; roles: string[] }[]> {
    const set = await this.load();
    if (!set) throw new ClientError('NOT_INITIALIZED', `${this.gun} has no trust data on ${this.repository.server.base.origin}`);
    const loaded = ['targets', ...allDelegations(set)];
    const wanted = tags.length > 0 ? tags : [...new Set(loaded.flatMap((r) => Object.keys(set.targets(r)?.signed.targets ?? {})))].sort();
    const changed = new Map<string, TargetsSigned & Record<string, unknown>>();
    const removed: { tag: string; roles: string[] }[] = [];
    for (const tag of wanted) {
      const roles = loaded.filter((r) => set.targets(r)?.signed.targets?.[tag] && this.canSign(set, r));
      if (roles.length === 0) {
        if (tags.length > 0) throw new ClientError('NO_SUCH_TARGET', `${this.gun}:${tag} is not signed in a role you hold a key for`);
        continue;
      }
      for (const role of roles) {
        const doc = changed.get(role) ?? this.nextTargets(set, role);
        delete doc.targets![tag];
        changed.set(role, doc);
      }
      removed.push({ tag, roles });
    }
    if (changed.size === 0) return removed;
    const files = new Map<string, { signed: object; signers: DocumentSigner[] }>();
    for (const [role, doc] of changed) files.set(role, { signed: doc, signers: await this.targetsSigners(set, role) });
    await this.publish(set, set.root.signed, files);
    return removed;
  }

  private canSign(set: TrustedSet, role: string): boolean {
    const root = set.root.signed;
    if (role === 'targets') return this.keys.heldAmong(root.roles['targets']?.keyids ?? [], root.keys).length > 0;
    const parent = set.targets(parentRole(role))?.signed;
    const entry = parent?.delegations?.roles?.find((r) => r.name === role);
    return !!entry && this.keys.heldAmong(entry.keyids, parent?.delegations?.keys ?? {}).length > 0;
  }

  /** Delegate to signer `name` with `keys` (docker trust signer add); initialises a new repository. */
  async addSigner(name: string, keys: MetadataKey[], options: { threshold?: number } = {}): Promise<{ initialized: boolean }> {
    checkSignerName(name);
    const threshold = options.threshold ?? 1;
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > keys.length) {
      throw new ClientError('BAD_INPUT', `the threshold of signer ${name} must be between 1 and its number of keys (${keys.length}), got ${threshold}`);
    }
    const set = await this.load();
    if (!set) {
      await this.initialize({ signers: [{ name, keys, threshold }] });
      return { initialized: true };
    }
    const targets = this.nextTargets(set, 'targets');
    addSignerTo(targets, name, keys, threshold);
    await this.publish(set, set.root.signed, new Map([['targets', { signed: targets, signers: await this.targetsSigners(set, 'targets') }]]));
    return { initialized: false };
  }

  /** Remove signer `name`: its delegation, and its keys from `targets/releases` (unless another signer shares them). */
  async removeSigner(name: string, options: { force?: boolean } = {}): Promise<void> {
    checkSignerName(name);
    const set = await this.load();
    if (!set) throw new ClientError('NOT_INITIALIZED', `${this.gun} has no trust data on ${this.repository.server.base.origin}`);
    const targets = this.nextTargets(set, 'targets');
    const roles = targets.delegations!.roles ?? [];
    const role = `targets/${name}`;
    const signer = roles.find((r) => r.name === role);
    if (!signer) throw new ClientError('BAD_INPUT', `${name} is not a signer of ${this.gun}`);
    const others = new Set(roles.filter((r) => r.name !== role && r.name !== RELEASES_ROLE).flatMap((r) => r.keyids));
    const releases = roles.find((r) => r.name === RELEASES_ROLE);
    let remaining = roles.filter((r) => r.name !== role);
    if (releases) {
      const keep = releases.keyids.filter((id) => !signer.keyids.includes(id) || others.has(id));
      if (keep.length === 0 && !options.force) {
        throw new ClientError(
          'BAD_INPUT',
          `${name} is the last signer of ${RELEASES_ROLE} in ${this.gun}: removing it leaves its tags unverifiable (use --force)`,
        );
      }
      remaining =
        keep.length === 0 ? remaining.filter((r) => r.name !== RELEASES_ROLE) : remaining.map((r) => (r.name === RELEASES_ROLE ? { ...r, keyids: keep } : r));
    }
    targets.delegations!.roles = remaining;
    pruneKeys(targets);
    await this.publish(set, set.root.signed, new Map([['targets', { signed: targets, signers: await this.targetsSigners(set, 'targets') }]]));
  }

  /**
   * Rotate the targets or snapshot key (a new local key), or hand the snapshot (or timestamp)
   * key to the server: a new root lists the new key, signed by the current root key.
   */
  async rotate(role: 'targets' | 'snapshot' | 'timestamp', options: { serverManaged?: boolean } = {}): Promise<{ keyId: string }> {
    const set = await this.load();
    if (!set) throw new ClientError('NOT_INITIALIZED', `${this.gun} has no trust data on ${this.repository.server.base.origin}`);
    if (role === 'targets' && options.serverManaged) throw new ClientError('BAD_INPUT', 'the targets key cannot be server-managed');
    if (role === 'timestamp' && !options.serverManaged) throw new ClientError('BAD_INPUT', 'the timestamp key is always server-managed: use --server-managed');
    const rootSigners = await this.rootSigners(set.root.signed);
    const newKey = options.serverManaged ? null : await this.keys.create(role, this.gun);
    const publicKey = newKey ? newKey.tufPublic() : await this.repository.server.serverKey(role as 'snapshot' | 'timestamp', true);
    const keyId = canonicalKeyId(publicKey.keytype, publicKey.keyval.public);
    const root = this.nextRoot(set);
    const oldIds = root.roles[role]?.keyids ?? [];
    root.roles[role] = { ...root.roles[role]!, keyids: [keyId], threshold: 1 };
    root.keys[keyId] = keyEntry(publicKey);
    const stillUsed = new Set(Object.values(root.roles).flatMap((r) => r.keyids));
    for (const id of oldIds) if (!stillUsed.has(id)) delete root.keys[id];
    const files = new Map<string, { signed: object; signers: DocumentSigner[] }>([['root', { signed: root, signers: rootSigners }]]);
    if (role === 'targets') files.set('targets', { signed: this.nextTargets(set, 'targets'), signers: [signingAs(newKey!, keyId)] });
    await this.publish(set, root, files);
    return { keyId };
  }
}

function allDelegations(set: TrustedSet): string[] {
  const out: string[] = [];
  const walk = (role: string) => {
    for (const d of set.delegationsOf(role)) {
      if (set.targets(d.name)) {
        out.push(d.name);
        walk(d.name);
      }
    }
  };
  walk('targets');
  return out;
}

/**
 * Add (or extend) `targets/NAME` and `targets/releases` with `keys`, all paths. `threshold`
 * (default 1) is `targets/NAME`'s: how many of its keys must sign each of its versions (a key
 * ceremony when more than one).
 */
function addSignerTo(targets: TargetsSigned, name: string, keys: MetadataKey[], threshold = 1): void {
  const delegations = (targets.delegations ??= { keys: {}, roles: [] });
  const keyMap = (delegations.keys ??= {});
  const roles = (delegations.roles ??= []);
  const ids = keys.map((k) => {
    // Delegation keys are listed under their TUF ID (for a certificate, the certificate's ID).
    const id = tufKeyId(k.keytype, k.keyval.public);
    keyMap[id] = keyEntry(k);
    return id;
  });
  for (const roleName of [`targets/${name}`, RELEASES_ROLE]) {
    const existing = roles.find((r) => r.name === roleName);
    if (existing) {
      for (const id of ids) if (!existing.keyids.includes(id)) existing.keyids.push(id);
      if (!existing.paths || existing.paths.length === 0) existing.paths = [''];
      if (roleName !== RELEASES_ROLE && threshold !== 1) existing.threshold = threshold;
    } else {
      roles.push({ name: roleName, keyids: [...ids], threshold: roleName === RELEASES_ROLE ? 1 : threshold, paths: [''] } as DelegationRole);
    }
  }
}

/** Drop delegation keys no role uses any more. */
function pruneKeys(targets: TargetsSigned): void {
  const used = new Set((targets.delegations?.roles ?? []).flatMap((r) => r.keyids));
  const keys = targets.delegations?.keys ?? {};
  for (const id of Object.keys(keys)) if (!used.has(id)) delete keys[id];
}
