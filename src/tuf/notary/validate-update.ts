/**
 * The update rules of a Notary v1 server (notary-protocol.md §2): given what a client uploads
 * and what the repository holds, decide whether the update is acceptable and produce every file
 * to store: the uploaded roles verbatim, plus a generated snapshot (unless uploaded) and a
 * generated timestamp. Pure: no I/O, the clock and the server's keys come in as arguments.
 */
import { allowedByDelegation } from './delegation-paths.js';
import { badHierarchy, badRoot, badSnapshot, badTargets, invalid, OldVersionError } from './errors.js';
import { buildSnapshot, signDocument, type ServerSigningKey } from './generate.js';
import { heldKeysFor, nextTimestamp } from './resign.js';

import { checkHashes } from '../core/hashes.js';
import type { VerifierKey } from '../core/keys.js';
import {
  MAX_VERSION,
  readSigned,
  rootSchema,
  snapshotSchema,
  targetsSchema,
  type DelegationRole,
  type RootSigned,
  type SignedFile,
  type TargetsSigned,
} from './metadata.js';
import { BASE_ROLES, compareRoleDepth, isDelegationRole, isTargetsRole, parentRole } from './roles.js';
import { meetsThreshold } from '../core/signatures.js';
import { delegationKeys, rootKeys, rootRoleKeys } from './role-keys.js';

/** What the repository currently holds (current = referenced by the current snapshot). */
export interface RepositoryState {
  root: SignedFile | null;
  snapshot: SignedFile | null;
  /** Current `targets` and delegation files by role. */
  targets: ReadonlyMap<string, SignedFile>;
  /** Highest stored version of each role over the whole history. */
  latestVersions: ReadonlyMap<string, number>;
}

export interface UpdateOptions {
  gun: string;
  nowMs: number;
  snapshotExpiryMs: number;
  timestampExpiryMs: number;
  /**
   * Check everything but the signature thresholds of root, targets and delegations: what a
   * staged update (a key ceremony) is checked against before its signatures are all in.
   */
  skipThresholds?: boolean;
}

export interface NewFile {
  role: string;
  version: number;
  bytes: Buffer;
}

export interface UpdatePlan {
  /** Files to store: root, targets roles, snapshot, timestamp (those present). */
  files: NewFile[];
  /** Server keys that signed generated files: no longer pending once stored. */
  usedServerKeys: string[];
}

interface LoadedTargets {
  file: SignedFile;
  signed: TargetsSigned;
}

/**
 * Validate an update and return the files to store, in the order root, targets roles, snapshot,
 * timestamp. Throws ValidationError (refused update) or OldVersionError (stale version).
 */
export function validateUpdate(
  uploads: readonly SignedFile[],
  state: RepositoryState,
  serverKeys: readonly ServerSigningKey[],
  opts: UpdateOptions,
): UpdatePlan {
  // Duplicate parts: the last one wins, as in notary. Uploaded timestamps are ignored: the
  // timestamp is always the server's.
  const byRole = new Map<string, SignedFile>();
  for (const file of uploads) if (file.role !== 'timestamp') byRole.set(file.role, file);

  const uploadedRoot = byRole.get('root');
  let rootFile: SignedFile;
  let root: RootSigned;
  if (uploadedRoot) {
    root = checkRoot(uploadedRoot, state.root, opts);
    rootFile = uploadedRoot;
  } else if (state.root) {
    rootFile = state.root;
    root = storedRoot(state.root);
  } else {
    throw invalid('no pre-existing root and no root provided in update.');
  }

  // Targets and delegations, parents before children; parents not uploaded come from storage.
  const loaded = new Map<string, LoadedTargets>();
  const loadedFromStore = new Map<string, LoadedTargets>();
  const lookupTargets = (role: string): LoadedTargets | undefined => {
    const found = loaded.get(role) ?? loadedFromStore.get(role);
    if (found) return found;
    const stored = state.targets.get(role);
    if (!stored) return undefined;
    const parsed = readSigned(targetsSchema, stored);
    if (!parsed.ok) return undefined;
    const entry = { file: stored, signed: parsed.value };
    loadedFromStore.set(role, entry);
    return entry;
  };
  const targetRoles = [...byRole.keys()].filter(isTargetsRole).sort(compareRoleDepth);
  for (const role of targetRoles) {
    const file = byRole.get(role)!;
    loaded.set(role, checkTargets(file, root, lookupTargets, opts));
  }

  const uploadedSnapshot = byRole.get('snapshot');
  let snapshotBytes: Buffer;
  const usedServerKeys: string[] = [];
  if (uploadedSnapshot) {
    checkSnapshot(uploadedSnapshot, root, rootFile, [...loaded.values(), ...loadedFromStore.values()], opts);
    snapshotBytes = uploadedSnapshot.bytes;
  } else {
    const snapshotKeys = heldKeysFor('snapshot', root, serverKeys);
    if (!snapshotKeys) {
      throw badHierarchy('snapshot', 'no snapshot was included in update and server does not hold current snapshot key for repository');
    }
    snapshotBytes = generateSnapshot(state, rootFile, loaded, snapshotKeys, opts);
    usedServerKeys.push(...snapshotKeys.map((k) => k.keyId));
  }

  const timestampKeys = heldKeysFor('timestamp', root, serverKeys);
  if (!timestampKeys) throw badRoot('no  timestamp keys exist on the server');
  usedServerKeys.push(...timestampKeys.map((k) => k.keyId));
  const timestamp = nextTimestamp(snapshotBytes, state.latestVersions.get('timestamp') ?? 0, timestampKeys, opts.nowMs + opts.timestampExpiryMs);

  const files: NewFile[] = [];
  if (uploadedRoot) files.push({ role: 'root', version: uploadedRoot.version, bytes: uploadedRoot.bytes });
  for (const role of targetRoles) {
    const file = byRole.get(role)!;
    files.push({ role, version: file.version, bytes: file.bytes });
  }
  files.push({ role: 'snapshot', version: versionOf(snapshotBytes), bytes: snapshotBytes });
  files.push(timestamp);
  checkVersions(files, state.latestVersions);
  return { files, usedServerKeys };
}

/** Every new file's version must be above every stored version of its role (notary's storage rule). */
export function checkVersions(files: readonly NewFile[], latest: ReadonlyMap<string, number>): void {
  const seen = new Set<string>();
  for (const f of files) {
    if (f.version > MAX_VERSION) throw invalid(`${f.role} version would exceed ${MAX_VERSION}`);
    const stored = latest.get(f.role);
    if ((stored !== undefined && stored >= f.version) || seen.has(f.role)) {
      throw new OldVersionError(`${f.role} version ${f.version} is not newer than the stored version ${stored ?? f.version}`);
    }
    seen.add(f.role);
  }
}

function versionOf(bytes: Buffer): number {
  return (JSON.parse(bytes.toString('utf8')) as { signed: { version: number } }).signed.version;
}

function storedRoot(file: SignedFile): RootSigned {
  const parsed = readSigned(rootSchema, file);
  if (!parsed.ok) throw badRoot(`stored root is unreadable: ${parsed.reason}`);
  return parsed.value;
}

// ---------------------------------------------------------------------------------------------
// Root (§2.2, §2.9)

function checkRoot(file: SignedFile, previous: SignedFile | null, opts: UpdateOptions): RootSigned {
  const parsed = readSigned(rootSchema, file);
  if (!parsed.ok) throw badRoot(parsed.reason);
  const root = parsed.value;
  for (const role of BASE_ROLES) {
    const entry = root.roles[role];
    if (!entry) throw badRoot(`root does not define the ${role} role`);
    for (const id of entry.keyids) {
      if (!root.keys[id]) throw badRoot(`root lists key ${id} for ${role} but does not define it`);
    }
  }
  const current = previous?.version ?? 1;
  if (root.version !== current && root.version !== current + 1) {
    throw badRoot(`Root modifications must increment the version. Current ${current}, new ${root.version}`);
  }
  if (file.isExpired(opts.nowMs)) throw badRoot(`root expired at ${root.expires as string}`);

  const newKeys = rootKeys(root, opts.gun, { checkExpiry: true, nowMs: opts.nowMs });
  if (newKeys.keys.size === 0) {
    throw badRoot(`unable to retrieve valid leaf certificates: ${newKeys.problems.join('; ') || 'none listed'}`);
  }
  if (previous) {
    const old = storedRoot(previous);
    const oldKeys = rootKeys(old, opts.gun, { checkExpiry: false, nowMs: opts.nowMs });
    if (!opts.skipThresholds && !meetsThreshold(file.message(), file.signatures, oldKeys.keys, old.roles.root!.threshold)) {
      throw badRoot(
        'failed to validate data with current trusted certificates: the new root is not signed ' + `by ${old.roles.root!.threshold} of the current root's keys`,
      );
    }
  }
  if (!opts.skipThresholds && !meetsThreshold(file.message(), file.signatures, newKeys.keys, root.roles.root!.threshold)) {
    throw badRoot(`failed to validate integrity of roots: the new root is not signed by ${root.roles.root!.threshold} of its own root keys`);
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// Targets and delegations (§2.3)

function checkTargets(file: SignedFile, root: RootSigned, lookup: (role: string) => LoadedTargets | undefined, opts: UpdateOptions): LoadedTargets {
  const role = file.role;
  const parsed = readSigned(targetsSchema, file);
  if (!parsed.ok) throw badTargets(parsed.reason);
  const signed = parsed.value;
  if (file.isExpired(opts.nowMs)) throw badTargets(`${role} expired at ${signed.expires as string}`);

  let keys: Map<string, VerifierKey>;
  let threshold: number;
  let delegation: DelegationRole | null = null;
  if (role === 'targets') {
    ({ keys, threshold } = rootRoleKeys(root, 'targets'));
  } else {
    const parentName = parentRole(role);
    const parent = lookup(parentName);
    if (!parent) throw badTargets(`${role}: its parent role ${parentName} does not exist`);
    delegation = parent.signed.delegations?.roles?.find((r) => r.name === role) ?? null;
    if (!delegation) throw badTargets(`${role} is not delegated by ${parentName}`);
    ({ keys, threshold } = delegationKeys(delegation.keyids, parent.signed.delegations?.keys ?? {}, delegation.threshold));
  }
  if (!opts.skipThresholds && !meetsThreshold(file.message(), file.signatures, keys, threshold)) {
    throw badTargets(`${role}: fewer than ${threshold} valid signatures from the role's keys`);
  }
  checkDelegationsStructure(role, signed);
  if (delegation) checkDelegatedPaths(role, signed, delegationChain(role, delegation, lookup));
  return { file, signed };
}

function checkDelegationsStructure(role: string, signed: TargetsSigned): void {
  const delegations = signed.delegations;
  const names = new Set<string>();
  for (const d of delegations?.roles ?? []) {
    if (!isDelegationRole(d.name) || parentRole(d.name) !== role) {
      throw badTargets(`${role}: delegation ${JSON.stringify(d.name)} is not a valid direct child role`);
    }
    if (names.has(d.name)) throw badTargets(`${role}: delegation ${d.name} is listed twice`);
    names.add(d.name);
    if (d.paths && d.path_hash_prefixes) {
      throw badTargets(`${role}: delegation ${d.name} has both paths and path_hash_prefixes`);
    }
    for (const id of d.keyids) {
      if (!delegations?.keys?.[id]) throw badTargets(`${role}: delegation ${d.name} lists undefined key ${id}`);
    }
  }
}

/**
 * The delegation entries from `role` up to `targets`: a delegation can only narrow what its
 * ancestors were given (notary's `Restrict`).
 */
function delegationChain(role: string, delegation: DelegationRole, lookup: (role: string) => LoadedTargets | undefined): DelegationRole[] {
  const chain = [delegation];
  for (let child = parentRole(role); child !== 'targets'; child = parentRole(child)) {
    const entry = lookup(parentRole(child))?.signed.delegations?.roles?.find((r) => r.name === child);
    // A missing ancestor entry allows nothing: the chain is broken.
    chain.push(entry ?? { name: child, keyids: [], threshold: 1, paths: [] });
  }
  return chain;
}

/** Targets in a delegated role must lie inside the paths delegated to it at every level. */
function checkDelegatedPaths(role: string, signed: TargetsSigned, chain: readonly DelegationRole[]): void {
  for (const name of Object.keys(signed.targets ?? {})) {
    const refusedBy = chain.find((d) => !allowedByDelegation(d, name));
    if (refusedBy) {
      throw badTargets(`${role}: target ${JSON.stringify(name)} is outside the paths delegated to ${refusedBy.name}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Snapshot (§2.4) and timestamp (§2.5)

function checkSnapshot(file: SignedFile, root: RootSigned, rootFile: SignedFile, targets: readonly LoadedTargets[], opts: UpdateOptions): void {
  const parsed = readSigned(snapshotSchema, file);
  if (!parsed.ok) throw badSnapshot(parsed.reason);
  const snapshot = parsed.value;
  if (file.isExpired(opts.nowMs)) throw badSnapshot(`snapshot expired at ${snapshot.expires as string}`);
  const entry = rootRoleKeys(root, 'snapshot');
  if (!meetsThreshold(file.message(), file.signatures, entry.keys, entry.threshold)) {
    throw badSnapshot(`snapshot: fewer than ${entry.threshold} valid signatures from the root's snapshot keys`);
  }
  for (const required of ['root', 'targets']) {
    if (!snapshot.meta[required]?.hashes['sha256']) {
      throw badSnapshot(`snapshot has no sha256 for ${required}`);
    }
  }
  for (const { role, bytes } of [rootFile, ...targets.map((t) => t.file)]) {
    const meta = snapshot.meta[role];
    if (!meta) throw badSnapshot(`snapshot has no entry for ${role}`);
    const mismatch = checkHashes(bytes, meta.hashes);
    if (mismatch) throw badSnapshot(`snapshot entry for ${role}: ${mismatch}`);
  }
}

function generateSnapshot(
  state: RepositoryState,
  rootFile: SignedFile,
  loaded: ReadonlyMap<string, LoadedTargets>,
  keys: readonly ServerSigningKey[],
  opts: UpdateOptions,
): Buffer {
  const previousMeta = state.snapshot ? readSigned(snapshotSchema, state.snapshot) : null;
  const changed = new Map<string, Buffer>([['root', rootFile.bytes]]);
  for (const [role, { file }] of loaded) changed.set(role, file.bytes);
  if (!previousMeta?.ok) {
    // A first snapshot must describe targets, so targets must come with the update or exist.
    const targets = loaded.get('targets')?.file ?? state.targets.get('targets');
    if (!targets) throw invalid('no targets metadata: the first update of a repository must include targets');
    changed.set('targets', targets.bytes);
  }
  const version = Math.max(state.latestVersions.get('snapshot') ?? 0, state.snapshot?.version ?? 0) + 1;
  return signDocument(buildSnapshot(previousMeta?.ok ? previousMeta.value.meta : null, changed, version, opts.nowMs + opts.snapshotExpiryMs), keys);
}
