/** Role names as Notary v1 accepts them (`tuf/data/roles.go`). */

export const BASE_ROLES = ['root', 'targets', 'snapshot', 'timestamp'] as const;
export type BaseRole = (typeof BASE_ROLES)[number];

const DELEGATION_CHARS = /^[-a-z0-9_/]+$/;

/** A delegation name: under `targets/`, lower-case charset, path-clean, shorter than 256. */
export function isDelegationRole(role: string): boolean {
  if (!role.startsWith('targets/') || role.length >= 256 || !DELEGATION_CHARS.test(role)) return false;
  const segments = role.split('/');
  // Path-clean: no empty segment (`//`, trailing `/`); `.`/`..` cannot pass the charset.
  return segments.every((s) => s.length > 0);
}

export function isValidRole(role: string): boolean {
  return (BASE_ROLES as readonly string[]).includes(role) || isDelegationRole(role);
}

/** `targets` or a delegation: a role whose file has `_type` Targets. */
export function isTargetsRole(role: string): boolean {
  return role === 'targets' || isDelegationRole(role);
}

export function parentRole(role: string): string {
  return role.slice(0, role.lastIndexOf('/'));
}

/** Parents before children, then by name (notary's `role_sort.go`). */
export function compareRoleDepth(a: string, b: string): number {
  const da = a.split('/').length;
  const db = b.split('/').length;
  return da !== db ? da - db : a < b ? -1 : a > b ? 1 : 0;
}
