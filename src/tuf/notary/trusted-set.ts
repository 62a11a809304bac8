/**
 * The trusted set of a Notary v1 repository, as a client builds it (TUF client workflow, spec
 * §5, in notary's dialect): start from a trusted root (pinned, or trusted on first use), follow
 * root rotations one version at a time, then timestamp → snapshot → targets → delegations,
 * checking at each step signatures against the role's keys and threshold (distinct keys),
 * hashes and lengths against the file that lists it, versions against what was trusted before
 * (rollback) and expiry against the given time (freeze). Then it answers "which signed target
 * does role R give for name N" with the delegation paths applied at every level.
 *
 * Pure: no I/O and no clock; the time is passed in. Fetching is the caller's business, so the
 * same rules serve the deploy gate, the client and the server's own checks.
 */
import { checkHashes } from '../core/hashes.js';
import { decodeBase64 } from '../core/base64.js';
import {
  MalformedMetadataError,
  parseSignedFile,
  readSigned,
  rootSchema,
  snapshotSchema,
  targetsSchema,
  timestampSchema,
  type DelegationRole,
  type RootSigned,
  type SignedFile,
  type SnapshotSigned,
  type TargetsSigned,
  type TimestampSigned,
} from './metadata.js';
import { delegationKeys, rootKeys, rootRoleKeys, signatureCount, type RoleKeys } from './role-keys.js';
import { isDelegationRole, parentRole } from './roles.js';
import { allowedByDelegation } from './delegation-paths.js';
import { SignetError } from '../core/signet-error.js';

/** Why the trusted set refused a file. Codes are stable: clients and the gate report them. */
export type TrustErrorCode =
  | 'MALFORMED' // not a metadata file of the expected type
  | 'THRESHOLD' // fewer valid signatures from the role's keys than its threshold
  | 'EXPIRED' // the file (or the final root) expired: a freeze attack or a stale repository
  | 'ROLLBACK' // a version older than one trusted before
  | 'ROOT_VERSION' // a root rotation that does not go exactly one version up
  | 'HASH_MISMATCH' // the file is not the one its parent lists: mix-and-match
  | 'NOT_LISTED' // the parent does not list the file at all
  | 'NOT_DELEGATED' // no delegation names this role
  | 'ORDER'; // a file loaded before the one that vouches for it

export class TrustError extends SignetError {
  override name = 'TrustError';
  constructor(
    readonly code: TrustErrorCode,
    readonly role: string,
    message: string,
  ) {
    super(`${role}: ${message}`);
  }
}

/** A parsed role file: its exact bytes, envelope and typed `signed` part, parsed once. */
export interface RoleFile<T> {
  file: SignedFile;
  signed: T;
}
export type RootFile = RoleFile<RootSigned>;
export type TimestampFile = RoleFile<TimestampSigned>;
export type SnapshotFile = RoleFile<SnapshotSigned>;
export type TargetsFile = RoleFile<TargetsSigned>;

type Schema<T> = Parameters<typeof readSigned<T>>[0];

/** Parse `bytes` as a role file of one type; throws TrustError MALFORMED. */
export function parseRoleFile<T>(role: string, bytes: Buffer, schema: Schema<T>): RoleFile<T> {
  let file: SignedFile;
  try {
    file = parseSignedFile(role, bytes);
  } catch (e) {
    if (e instanceof MalformedMetadataError) throw new TrustError('MALFORMED', role, e.message);
    throw e;
  }
  const parsed = readSigned(schema, file);
  if (!parsed.ok) throw new TrustError('MALFORMED', role, parsed.reason);
  return { file, signed: parsed.value };
}

/** Versions trusted in an earlier run (a client's local trust store), for rollback checks. */
export interface KnownVersions {
  timestamp?: number;
  snapshot?: number;
  /** `targets` and delegations by role name. */
  targets?: Record<string, number>;
}

export interface TrustedSetOptions {
  gun: string;
  /** The time every expiry is checked against, ms since the epoch. */
  nowMs: number;
  known?: KnownVersions;
  /**
   * false: check signatures, hashes and versions but not expiry (of files or root
   * certificates), to verify stored history whose files have since expired. Default true.
   */
  checkExpiry?: boolean;
}

/** A signed target: what a role says the bytes named `name` are. */
export interface SignedTarget {
  role: string;
  name: string;
  length: number;
  hashes: Record<string, string>;
  custom?: unknown;
}

function requireSignatures(role: string, file: SignedFile, keys: RoleKeys, whose: string): void {
  const count = signatureCount(file.message(), file.signatures, keys);
  if (!count.met) {
    const why = keys.problems.length > 0 ? ` (unusable keys: ${keys.problems.join('; ')})` : '';
    throw new TrustError('THRESHOLD', role, `${count.valid} valid signatures from ${whose}, ${count.threshold} needed${why}`);
  }
}

function requireFresh(role: string, file: SignedFile, options: TrustedSetOptions): void {
  if (options.checkExpiry !== false && file.isExpired(options.nowMs)) throw new TrustError('EXPIRED', role, `expired at ${file.signed.expires}`);
}

function requireNotOlder(role: string, version: number, trusted: number | undefined): void {
  if (trusted !== undefined && version < trusted) {
    throw new TrustError('ROLLBACK', role, `version ${version} is older than the trusted version ${trusted}`);
  }
}

function requireListed(role: string, bytes: Buffer, meta: { length: number; hashes: Record<string, string> } | undefined, lister: string): void {
  if (!meta) throw new TrustError('NOT_LISTED', role, `${lister} does not list it`);
  if (meta.length !== bytes.length) {
    throw new TrustError('HASH_MISMATCH', role, `${bytes.length} bytes, ${lister} lists ${meta.length}`);
  }
  const mismatch = checkHashes(bytes, meta.hashes);
  if (mismatch) throw new TrustError('HASH_MISMATCH', role, `not the file ${lister} lists: ${mismatch}`);
}

export class TrustedSet {
  private rootFile: RootFile;
  private timestampFile: TimestampFile | null = null;
  private snapshotFile: SnapshotFile | null = null;
  private readonly targetsFiles = new Map<string, TargetsFile>();
  /** signingKeysOf's answers, per loaded file (a set is immutable once loaded). */
  private readonly signingKeys = new WeakMap<TargetsFile, Set<string>>();

  private constructor(
    root: RootFile,
    private readonly options: TrustedSetOptions,
  ) {
    this.rootFile = root;
  }

  /**
   * Start from a root the caller trusts: pinned, kept from an earlier run, or fetched on first
   * use. It must be signed by a threshold of its own root keys, certificates valid for the GUN.
   * Its expiry is checked by `checkRootFresh`, after any rotations (an expired trusted root may
   * be followed by a valid successor).
   */
  static fromTrustedRoot(bytes: Buffer, options: TrustedSetOptions): TrustedSet {
    const root = parseRoleFile('root', bytes, rootSchema);
    requireSignatures('root', root.file, rootKeys(root.signed, options.gun, { checkExpiry: false, nowMs: options.nowMs }), 'its own root keys');
    return new TrustedSet(root, options);
  }

  get root(): RootFile {
    return this.rootFile;
  }
  get timestamp(): TimestampFile | null {
    return this.timestampFile;
  }
  get snapshot(): SnapshotFile | null {
    return this.snapshotFile;
  }
  targets(role = 'targets'): TargetsFile | null {
    return this.targetsFiles.get(role) ?? null;
  }

  /**
   * The next root (`{version}.root.json` with version = trusted + 1): signed by a threshold of
   * the trusted root's keys and of its own, whose certificates must be valid now.
   */
  updateRoot(bytes: Buffer): RootFile {
    if (this.timestampFile) throw new TrustError('ORDER', 'root', 'roots must be updated before the timestamp is loaded');
    const next = parseRoleFile('root', bytes, rootSchema);
    const expected = this.rootFile.signed.version + 1;
    if (next.signed.version !== expected) {
      throw new TrustError('ROOT_VERSION', 'root', `version ${next.signed.version} where ${expected} was expected`);
    }
    const { gun, nowMs } = this.options;
    requireSignatures(
      'root',
      next.file,
      rootKeys(this.rootFile.signed, gun, { checkExpiry: false, nowMs }),
      `the trusted root v${this.rootFile.signed.version}'s keys`,
    );
    requireSignatures('root', next.file, rootKeys(next.signed, gun, { checkExpiry: this.options.checkExpiry !== false, nowMs }), 'its own root keys');
    this.rootFile = next;
    return next;
  }

  /** After the last rotation: the root in force must not have expired. */
  checkRootFresh(): void {
    requireFresh('root', this.rootFile.file, this.options);
  }

  updateTimestamp(bytes: Buffer): TimestampFile {
    this.checkRootFresh();
    const ts = parseRoleFile('timestamp', bytes, timestampSchema);
    requireSignatures('timestamp', ts.file, rootRoleKeys(this.rootFile.signed, 'timestamp'), "the root's timestamp keys");
    requireNotOlder('timestamp', ts.signed.version, this.timestampFile?.signed.version ?? this.options.known?.timestamp);
    requireFresh('timestamp', ts.file, this.options);
    this.timestampFile = ts;
    return ts;
  }

  updateSnapshot(bytes: Buffer): SnapshotFile {
    if (!this.timestampFile) throw new TrustError('ORDER', 'snapshot', 'the timestamp must be loaded first');
    requireListed('snapshot', bytes, this.timestampFile.signed.meta['snapshot'], 'the timestamp');
    const snap = parseRoleFile('snapshot', bytes, snapshotSchema);
    requireSignatures('snapshot', snap.file, rootRoleKeys(this.rootFile.signed, 'snapshot'), "the root's snapshot keys");
    requireNotOlder('snapshot', snap.signed.version, this.snapshotFile?.signed.version ?? this.options.known?.snapshot);
    requireFresh('snapshot', snap.file, this.options);
    // The root in force must be the one the snapshot lists: else it is a mix of two states.
    requireListed('root', this.rootFile.file.bytes, snap.signed.meta['root'], 'the snapshot');
    this.snapshotFile = snap;
    return snap;
  }

  /** `targets`, or a delegation once its parent is loaded. */
  updateTargets(role: string, bytes: Buffer): TargetsFile {
    if (!this.snapshotFile) throw new TrustError('ORDER', role, 'the snapshot must be loaded first');
    if (role !== 'targets' && !isDelegationRole(role)) throw new TrustError('NOT_DELEGATED', role, 'not a targets role');
    requireListed(role, bytes, this.snapshotFile.signed.meta[role], 'the snapshot');
    const file = parseRoleFile(role, bytes, targetsSchema);
    if (role === 'targets') {
      requireSignatures(role, file.file, rootRoleKeys(this.rootFile.signed, 'targets'), "the root's targets keys");
    } else {
      const delegation = this.delegation(role);
      const parent = this.targetsFiles.get(parentRole(role))!;
      requireSignatures(
        role,
        file.file,
        delegationKeys(delegation.keyids, parent.signed.delegations?.keys ?? {}, delegation.threshold),
        `the keys ${parentRole(role)} delegates to it`,
      );
    }
    requireNotOlder(role, file.signed.version, this.targetsFiles.get(role)?.signed.version ?? this.options.known?.targets?.[role]);
    requireFresh(role, file.file, this.options);
    this.targetsFiles.set(role, file);
    return file;
  }

  /** The entry delegating `role` in its (loaded) parent. */
  private delegation(role: string): DelegationRole {
    const parentName = parentRole(role);
    const parent = this.targetsFiles.get(parentName);
    if (!parent) throw new TrustError('ORDER', role, `its parent ${parentName} must be loaded first`);
    const entry = parent.signed.delegations?.roles?.find((r) => r.name === role);
    if (!entry) throw new TrustError('NOT_DELEGATED', role, `${parentName} does not delegate to it`);
    return entry;
  }

  /**
   * The keys (by identity: sha256 of the SPKI) whose signatures on a loaded targets role verify,
   * so that callers can count signers by distinct key material.
   */
  signingKeysOf(role: string): ReadonlySet<string> {
    const file = this.targetsFiles.get(role);
    if (!file) return new Set();
    const known = this.signingKeys.get(file);
    if (known) return known;
    let keys: RoleKeys;
    if (role === 'targets') keys = rootRoleKeys(this.rootFile.signed, 'targets');
    else {
      const entry = this.delegation(role);
      keys = delegationKeys(entry.keyids, this.targetsFiles.get(parentRole(role))!.signed.delegations?.keys ?? {}, entry.threshold);
    }
    const out = new Set<string>();
    const message = file.file.message();
    for (const sig of file.file.signatures) {
      const key = keys.keys.get(sig.keyid);
      const bytes = typeof sig.sig === 'string' ? decodeBase64(sig.sig) : null;
      if (key && bytes && key.verify(sig.method, message, bytes)) out.add(key.identity);
    }
    this.signingKeys.set(file, out);
    return out;
  }

  /** The delegations a loaded targets role lists, in order: what to fetch next. */
  delegationsOf(role: string): DelegationRole[] {
    return [...(this.targetsFiles.get(role)?.signed.delegations?.roles ?? [])];
  }

  /**
   * What `role` signs for `name`, or null: the role must be loaded, list the name, and every
   * delegation from `targets` down to it must allow the name (a delegation only narrows).
   */
  targetOf(role: string, name: string): SignedTarget | null {
    const file = this.targetsFiles.get(role);
    const entry = file?.signed.targets?.[name];
    if (!file || !entry) return null;
    for (let child = role; child !== 'targets'; child = parentRole(child)) {
      let delegation: DelegationRole;
      try {
        delegation = this.delegation(child);
      } catch {
        return null;
      }
      if (!allowedByDelegation(delegation, name)) return null;
    }
    const custom = (entry as { custom?: unknown }).custom;
    return { role, name, length: entry.length, hashes: entry.hashes, ...(custom !== undefined ? { custom } : {}) };
  }

  /** Every loaded role that signs `name`, `targets` first, then delegations by name. */
  signersOf(name: string): SignedTarget[] {
    const roles = [...this.targetsFiles.keys()].sort((a, b) => (a === 'targets' ? -1 : b === 'targets' ? 1 : a < b ? -1 : a > b ? 1 : 0));
    return roles.map((role) => this.targetOf(role, name)).filter((t): t is SignedTarget => t !== null);
  }
}
