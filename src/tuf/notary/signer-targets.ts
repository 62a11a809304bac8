/**
 * What a server-held signer signs when a pipeline asks it to sign a tag, with docker trust's
 * conventions: the tag goes into the signer's own delegation `targets/NAME` and into
 * `targets/releases` where the signer's key is listed there, and into `targets` only where
 * the signer's key is the repository's targets key. Pure: the state and the clock come in.
 */
import { formatRfc3339 } from '../core/time.js';
import { allowedByDelegation } from './delegation-paths.js';
import type { RootSigned, TargetsSigned } from './metadata.js';

export const RELEASES_ROLE = 'targets/releases';
/** notary's default lifetime of a targets file: three years. */
export const TARGETS_EXPIRY_MS = 3 * 365 * 86_400_000;

export interface SignableRole {
  role: string;
  /** The signer's key IDs this role lists: each signs it. */
  keyIds: string[];
}

/**
 * The roles signer `name` signs `tag` into, given the current root and targets and its usable
 * key IDs; and, when there are none, why (for the refusal).
 */
export function signerRoles(
  name: string,
  tag: string,
  root: RootSigned,
  targets: TargetsSigned | null,
  keyIds: ReadonlySet<string>,
): { roles: SignableRole[]; problem: string | null } {
  const roles: SignableRole[] = [];
  const notes: string[] = [];
  const rootIds = (root.roles['targets']?.keyids ?? []).filter((id) => keyIds.has(id));
  if (rootIds.length > 0) roles.push({ role: 'targets', keyIds: rootIds });
  for (const roleName of [`targets/${name}`, RELEASES_ROLE]) {
    const entry = targets?.delegations?.roles?.find((r) => r.name === roleName);
    if (!entry) continue;
    const ids = entry.keyids.filter((id) => keyIds.has(id));
    if (ids.length === 0) {
      if (roleName !== RELEASES_ROLE) notes.push(`${roleName} does not list the signer's key`);
      continue;
    }
    if (!allowedByDelegation(entry, tag)) {
      notes.push(`${roleName} may not sign ${tag} (its paths do not cover it)`);
      continue;
    }
    roles.push({ role: roleName, keyIds: ids });
  }
  if (roles.length > 0) return { roles, problem: null };
  if (!targets) return { roles, problem: 'the repository has no targets file yet' };
  return {
    roles,
    problem:
      notes.length > 0
        ? notes.join('; ')
        : `the repository does not delegate to signer ${name}: add its certificate (targets/${name} and ${RELEASES_ROLE}, e.g. signet trust signer add --server-held ${name})`,
  };
}

export interface TargetEntry {
  hashes: { sha256: string };
  length: number;
  custom?: unknown;
}

/** The target entry for a manifest digest (hex SHA-256) and size. */
export function targetEntry(digestHex: string, size: number, custom?: unknown): TargetEntry {
  const entry: TargetEntry = { hashes: { sha256: Buffer.from(digestHex, 'hex').toString('base64') }, length: size };
  if (custom !== undefined) entry.custom = custom;
  return entry;
}

/**
 * The next version of a targets role with `tag` set to `entry`: the current one (if any)
 * with everything else kept, its version above every version ever stored, a fresh expiry.
 */
export function nextTargetsWith(current: TargetsSigned | null, latestVersion: number, tag: string, entry: TargetEntry, nowMs: number): TargetsSigned {
  const base = current ? structuredClone(current) : ({ _type: 'Targets', delegations: { keys: {}, roles: [] }, targets: {}, version: 0 } as TargetsSigned);
  const targets = { ...(base.targets ?? {}) } as Record<string, unknown>;
  targets[tag] = entry;
  return {
    ...base,
    delegations: base.delegations ?? { keys: {}, roles: [] },
    targets,
    version: Math.max(base.version, latestVersion) + 1,
    expires: formatRfc3339(nowMs + TARGETS_EXPIRY_MS),
  } as TargetsSigned;
}
