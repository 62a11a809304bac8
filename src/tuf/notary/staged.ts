/**
 * Key ceremonies: the signature thresholds a staged update must meet before it may be
 * published, and where its collected signatures stand. A staged update is one role file
 * (`root`, `targets` or a delegation) whose `signed` part is fixed; holders add signatures in
 * separate rounds. Pure: the repository state and the clock come in as arguments.
 *
 * A root rotation has two thresholds, counted apart (notary-protocol.md §2.2): the previous
 * root's root threshold over the previous root's keys, and the new root's own threshold over its
 * own keys. One key listed in both counts in both.
 */
import type { VerifierKey } from '../core/keys.js';
import { decodeBase64 } from '../core/base64.js';
import type { SignatureEntry } from '../core/signatures.js';
import { badRoot, badTargets } from './errors.js';
import { readSigned, rootSchema, targetsSchema, type SignedFile } from './metadata.js';
import { delegationKeys, rootKeys, rootRoleKeys } from './role-keys.js';
import { isDelegationRole, parentRole } from './roles.js';
import type { RepositoryState } from './validate-update.js';

/** One threshold a staged update must meet. */
export interface StagedThreshold {
  /**
   * `root` (the new root's own keys), `current-root` (the keys of the root it replaces, for a
   * rotation), `targets` (the root's targets keys) or the delegation's name (its parent's keys).
   */
  name: string;
  /** In words, for people. */
  description: string;
  threshold: number;
  keys: ReadonlyMap<string, VerifierKey>;
  /** Why listed keys cannot sign (an unusable certificate, a key not defined). */
  problems: string[];
}

/** Where one threshold stands. */
export interface ThresholdStatus {
  name: string;
  description: string;
  threshold: number;
  /** Key IDs that may sign for it. */
  keyIds: string[];
  /** Key IDs with a valid signature (one per key). */
  signedBy: string[];
  /** Key IDs that may still sign. */
  pendingKeyIds: string[];
  /** Signatures still needed (0 when met). */
  needed: number;
}

/** The thresholds `file` must meet to be published on top of `state`. */
export function stagedThresholds(file: SignedFile, state: RepositoryState, gun: string, nowMs: number): StagedThreshold[] {
  if (file.role === 'root') {
    const parsed = readSigned(rootSchema, file);
    if (!parsed.ok) throw badRoot(parsed.reason);
    const root = parsed.value;
    const own = rootKeys(root, gun, { checkExpiry: true, nowMs });
    const out: StagedThreshold[] = [];
    if (state.root) {
      const old = readSigned(rootSchema, state.root);
      if (!old.ok) throw badRoot(`stored root is unreadable: ${old.reason}`);
      const previous = rootKeys(old.value, gun, { checkExpiry: false, nowMs });
      out.push({
        name: 'current-root',
        description: `root keys of the current root (version ${old.value.version})`,
        threshold: old.value.roles['root']!.threshold,
        keys: previous.keys,
        problems: previous.problems,
      });
    }
    out.push({
      name: 'root',
      description: `root keys of the new root (version ${root.version})`,
      threshold: root.roles['root']!.threshold,
      keys: own.keys,
      problems: own.problems,
    });
    return out;
  }
  if (file.role === 'targets') {
    if (!state.root) throw badTargets('the repository has no root yet');
    const root = readSigned(rootSchema, state.root);
    if (!root.ok) throw badRoot(`stored root is unreadable: ${root.reason}`);
    const { keys, threshold, problems } = rootRoleKeys(root.value, 'targets');
    return [{ name: 'targets', description: `targets keys of root version ${root.value.version}`, threshold, keys, problems }];
  }
  if (isDelegationRole(file.role)) {
    const parentName = parentRole(file.role);
    const parentFile = state.targets.get(parentName);
    if (!parentFile) throw badTargets(`${file.role}: its parent role ${parentName} does not exist`);
    const parent = readSigned(targetsSchema, parentFile);
    if (!parent.ok) throw badTargets(parent.reason);
    const entry = parent.value.delegations?.roles?.find((r) => r.name === file.role);
    if (!entry) throw badTargets(`${file.role} is not delegated by ${parentName}`);
    const { keys, threshold, problems } = delegationKeys(entry.keyids, parent.value.delegations?.keys ?? {}, entry.threshold);
    return [{ name: file.role, description: `keys ${parentName} (version ${parent.value.version}) delegates ${file.role} to`, threshold, keys, problems }];
  }
  throw badTargets(`${file.role} cannot be staged: only root, targets and delegations can`);
}

/**
 * Refuse thresholds no set of signatures could meet: fewer usable keys than the threshold (a
 * certificate for another repository, say). Such an update could never be published.
 */
export function checkReachable(role: string, thresholds: readonly StagedThreshold[]): void {
  for (const t of thresholds) {
    if (t.keys.size >= t.threshold) continue;
    const why = t.problems.length ? ` (${t.problems.join('; ')})` : '';
    const msg = `${role}: the threshold of ${t.threshold} ${t.description} can never be met: only ${t.keys.size} of them can sign${why}`;
    throw role === 'root' ? badRoot(msg) : badTargets(msg);
  }
}

/** Whether `entry` is a valid signature over `message` by a key of `keys`; the key when it is. */
export function verifyEntry(message: Buffer, entry: SignatureEntry, keys: ReadonlyMap<string, VerifierKey>): VerifierKey | null {
  const key = keys.get(entry.keyid);
  if (!key) return null;
  const sig = decodeBase64(entry.sig);
  return sig && key.verify(entry.method, message, sig) ? key : null;
}

/** Each threshold's standing given the signatures collected. */
export function thresholdStatus(message: Buffer, signatures: readonly SignatureEntry[], thresholds: readonly StagedThreshold[]): ThresholdStatus[] {
  return thresholds.map((t) => {
    const signedIdentities = new Set<string>();
    const signedBy: string[] = [];
    for (const entry of signatures) {
      const key = verifyEntry(message, entry, t.keys);
      if (!key || signedIdentities.has(key.identity)) continue;
      signedIdentities.add(key.identity);
      signedBy.push(entry.keyid);
    }
    const keyIds = [...t.keys.keys()].sort();
    const pendingKeyIds = keyIds.filter((id) => !signedIdentities.has(t.keys.get(id)!.identity));
    return {
      name: t.name,
      description: t.description,
      threshold: t.threshold,
      keyIds,
      signedBy,
      pendingKeyIds,
      needed: Math.max(0, t.threshold - signedBy.length),
    };
  });
}
