/**
 * What a delegation allows (notary `tuf/data/roles.go` `CheckPaths` / `CheckPrefixes`): a target
 * name starting with one of its `paths`, or whose sha256 (hex) starts with one of its
 * `path_hash_prefixes`. A delegation only narrows: a name must be allowed at every level from
 * `targets` down.
 */
import { createHash } from 'node:crypto';
import type { DelegationRole } from './metadata.js';

export function allowedByDelegation(delegation: Pick<DelegationRole, 'paths' | 'path_hash_prefixes'>, name: string): boolean {
  const prefixes = delegation.path_hash_prefixes ?? [];
  return (
    (delegation.paths ?? []).some((p) => name.startsWith(p)) ||
    (prefixes.length > 0 && prefixes.some((p) => createHash('sha256').update(name).digest('hex').startsWith(p)))
  );
}
