/**
 * What the inspector shows (the `/api/v1/…` read API and the `/ui/` pages): read models of
 * repositories, their signed tags, keys, delegations and expiries, their history with the audit
 * trail, a diff between two versions of a role, and what expires across repositories. Reads
 * only; every list is bounded.
 */
import { readSigned, rootSchema, targetsSchema, type SignedFile } from '../tuf/notary/metadata.js';
import type { AuditQuery, AuditRecord } from '../storage/audit-store.js';
import type { RepositorySummaryRow, SummarySort } from '../storage/summary-store.js';
import type { ServiceContext } from './context.js';
import { NotFoundError } from './errors.js';
import { currentFiles, signerName, type CurrentFiles } from './repository-summary.js';

export type ExpiryState = 'expired' | 'warning' | 'fine';

export function expiryState(expires: Date | string | null, nowMs: number, warningMs: number): ExpiryState | null {
  if (expires === null) return null;
  const t = typeof expires === 'string' ? Date.parse(expires) : expires.getTime();
  return t < nowMs ? 'expired' : t < nowMs + warningMs ? 'warning' : 'fine';
}

export interface RepositoryListItem {
  gun: string;
  signedTags: number;
  signers: string[];
  lastChange: string;
  nearestExpiry: { role: string; expires: string; state: ExpiryState } | null;
}

export interface RepositoryList {
  total: number;
  repositories: RepositoryListItem[];
  /** Offset of the next page, or null on the last one. */
  next: number | null;
}

export interface ListOptions {
  q?: string | undefined;
  sort: SummarySort;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
  /** Only these repositories (what the caller may pull); undefined = all. */
  only?: readonly string[] | undefined;
  warningMs: number;
}

function listItem(r: RepositorySummaryRow, nowMs: number, warningMs: number): RepositoryListItem {
  return {
    gun: r.gun,
    signedTags: r.signedTags,
    signers: r.signers,
    lastChange: r.lastChange.toISOString(),
    nearestExpiry:
      r.nearestExpiry && r.nearestRole
        ? { role: r.nearestRole, expires: r.nearestExpiry.toISOString(), state: expiryState(r.nearestExpiry, nowMs, warningMs)! }
        : null,
  };
}

export async function listRepositories(ctx: ServiceContext, o: ListOptions): Promise<RepositoryList> {
  const { total, rows } = await ctx.stores.summaries.list({ q: o.q, only: o.only, sort: o.sort, order: o.order, limit: o.limit, offset: o.offset });
  const now = ctx.now();
  return { total, repositories: rows.map((r) => listItem(r, now, o.warningMs)), next: o.offset + rows.length < total ? o.offset + rows.length : null };
}

export interface KeyInfo {
  id: string;
  type: string;
}

export interface SignedTag {
  tag: string;
  /** Hex SHA-256 of the manifest, as docker trust inspect shows it. */
  digest: string | null;
  size: number;
  signers: string[];
  /** The target's `custom` field, as the signer wrote it (any JSON). */
  custom?: unknown;
}

export interface DelegationInfo {
  /** The role, e.g. `targets/releases`. */
  role: string;
  /** The signer's name as docker shows it, e.g. `releases`. */
  name: string;
  parent: string;
  threshold: number;
  keys: KeyInfo[];
  paths: string[] | null;
  pathHashPrefixes: string[] | null;
}

export interface RoleExpiryInfo {
  role: string;
  version: number;
  expires: string;
  state: ExpiryState;
  /** Who re-signs it: the server (timestamp, a snapshot it holds the key of) or the owner. */
  signedBy: 'server' | 'owner';
}

export interface RepositoryDetail {
  gun: string;
  signedTags: SignedTag[];
  delegations: DelegationInfo[];
  rootKeys: KeyInfo[];
  rootThreshold: number;
  targetsKeys: KeyInfo[];
  targetsThreshold: number;
  serverKeys: { id: string; role: string; type: string; created: string; lastUsed: string | null }[];
  roles: RoleExpiryInfo[];
  /** Signed tags beyond this many are left out (and counted in `signedTagsTotal`). */
  signedTagsTotal: number;
}

const b64ToHex = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('hex') : null);

async function filesOf(ctx: ServiceContext, gun: string): Promise<CurrentFiles & { root: NonNullable<CurrentFiles['root']> }> {
  const files = await currentFiles(ctx.stores.metadata, ctx.cache, gun);
  if (!files?.root) throw new NotFoundError(`no repository ${gun}`);
  return files as CurrentFiles & { root: NonNullable<CurrentFiles['root']> };
}

export async function repositoryDetail(ctx: ServiceContext, gun: string, o: { warningMs: number; maxTags: number }): Promise<RepositoryDetail> {
  const files = await filesOf(ctx, gun);
  const now = ctx.now();
  const root = readSigned(rootSchema, files.root.file);
  const rootRoles = root.ok ? root.value.roles : {};
  const keysOf = (ids: readonly string[], keys: Record<string, { keytype: string }> | null | undefined): KeyInfo[] =>
    ids.map((id) => ({ id, type: keys?.[id]?.keytype ?? 'unknown' }));
  const rootKeys = root.ok ? root.value.keys : {};

  const tags = new Map<string, SignedTag>();
  const delegations: DelegationInfo[] = [];
  for (const f of files.reachable) {
    const t = readSigned(targetsSchema, f);
    if (!t.ok) continue;
    for (const [tag, meta] of Object.entries(t.value.targets ?? {})) {
      const digest = b64ToHex(meta.hashes['sha256']);
      const key = `${tag}\u0000${digest}`;
      const entry = tags.get(key) ?? {
        tag,
        digest,
        size: meta.length,
        signers: [],
        ...('custom' in meta ? { custom: (meta as { custom?: unknown }).custom } : {}),
      };
      entry.signers.push(signerName(f.role));
      tags.set(key, entry);
    }
    for (const d of t.value.delegations?.roles ?? []) {
      delegations.push({
        role: d.name,
        name: signerName(d.name),
        parent: f.role,
        threshold: d.threshold,
        keys: keysOf(d.keyids, t.value.delegations?.keys),
        paths: d.paths ?? null,
        pathHashPrefixes: d.path_hash_prefixes ?? null,
      });
    }
  }
  const sortedTags = [...tags.values()].sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : (a.digest ?? '') < (b.digest ?? '') ? -1 : 1));

  const serverKeys = await ctx.stores.serverKeys.ofRepository(gun);
  const serverKeyIds = new Set(serverKeys.map((k) => k.keyId));
  const byServer = (role: string) => (rootRoles[role]?.keyids ?? []).some((k) => serverKeyIds.has(k));
  const roleInfo = (f: SignedFile, signedBy: 'server' | 'owner'): RoleExpiryInfo => ({
    role: f.role,
    version: f.version,
    expires: f.signed.expires,
    state: expiryState(f.signed.expires, now, signedBy === 'server' ? 0 : o.warningMs)!,
    signedBy,
  });
  const roles: RoleExpiryInfo[] = [roleInfo(files.root.file, 'owner'), ...files.reachable.map((f) => roleInfo(f, 'owner'))];
  if (files.snapshot) roles.push(roleInfo(files.snapshot.file, byServer('snapshot') ? 'server' : 'owner'));
  roles.push(roleInfo(files.timestamp.file, 'server'));

  return {
    gun,
    signedTags: sortedTags.slice(0, o.maxTags),
    signedTagsTotal: sortedTags.length,
    delegations,
    rootKeys: keysOf(rootRoles['root']?.keyids ?? [], rootKeys),
    rootThreshold: rootRoles['root']?.threshold ?? 1,
    targetsKeys: keysOf(rootRoles['targets']?.keyids ?? [], rootKeys),
    targetsThreshold: rootRoles['targets']?.threshold ?? 1,
    serverKeys: serverKeys.map((k) => ({
      id: k.keyId,
      role: k.role,
      type: k.keytype,
      created: k.createdAt.toISOString(),
      lastUsed: k.lastUsed ? k.lastUsed.toISOString() : null,
    })),
    roles,
  };
}

export interface HistoryEntry {
  role: string;
  version: number;
  sha256: string;
  length: number;
  stored: string;
  /** Who published it, from the audit trail; `signet` for what the server signed itself. */
  publishedBy: string | null;
  action: string | null;
}

export interface RepositoryHistory {
  gun: string;
  versions: HistoryEntry[];
  audit: AuditRecord[];
}

export async function repositoryHistory(ctx: ServiceContext, gun: string, o: { limit: number }): Promise<RepositoryHistory> {
  const versions = await ctx.stores.metadata.versionsOf(gun, o.limit);
  if (versions.length === 0) throw new NotFoundError(`no repository ${gun}`);
  const audit = await ctx.stores.audit.read({ gun, limit: 1000 });
  // An update's audit record names the roles and versions it stored.
  const who = new Map<string, AuditRecord>();
  for (const r of audit) {
    const roles = (r.detail as { roles?: { role?: unknown; version?: unknown }[] } | null)?.roles;
    if (!Array.isArray(roles)) continue;
    for (const x of roles) if (typeof x.role === 'string' && typeof x.version === 'number') who.set(`${x.role}\u0000${x.version}`, r);
  }
  return {
    gun,
    versions: versions.map((v) => {
      const record = who.get(`${v.role}\u0000${v.version}`);
      const serverSigned = !record && (v.role === 'timestamp' || v.role === 'snapshot');
      return {
        role: v.role,
        version: v.version,
        sha256: v.sha256,
        length: v.length,
        stored: v.createdAt.toISOString(),
        publishedBy: record ? record.subject : serverSigned ? 'signet' : null,
        action: record ? record.action : serverSigned ? 'resign' : null,
      };
    }),
    audit: audit.slice(0, 100),
  };
}

export interface DiffLine {
  op: 'added' | 'removed' | 'changed';
  path: string;
  from?: string;
  to?: string;
}

export interface RoleDiff {
  gun: string;
  role: string;
  from: { version: number; expires: string };
  to: { version: number; expires: string };
  changes: DiffLine[];
  /** More changes than are listed. */
  truncated: boolean;
}

/** Leaves of a JSON value by path (`targets."v1".hashes.sha256`); arrays by index. */
function flatten(value: unknown, path: string, out: Map<string, string>, limit: number): void {
  if (out.size >= limit) return;
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    if (entries.length === 0) out.set(path, Array.isArray(value) ? '[]' : '{}');
    for (const [k, v] of entries) flatten(v, path ? `${path}.${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : JSON.stringify(k)}` : k, out, limit);
  } else {
    out.set(path, JSON.stringify(value));
  }
}

/** What changed in the `signed` part of a role between two stored versions. */
export async function roleDiff(ctx: ServiceContext, gun: string, role: string, from: number, to: number, o: { maxChanges: number }): Promise<RoleDiff> {
  const [a, b] = await Promise.all([ctx.stores.metadata.byVersion(gun, role, from), ctx.stores.metadata.byVersion(gun, role, to)]);
  if (!a || !b) throw new NotFoundError(`no version ${!a ? from : to} of ${role} in ${gun}`);
  const fa = ctx.cache.parse(a);
  const fb = ctx.cache.parse(b);
  const bound = 200_000;
  const left = new Map<string, string>();
  const right = new Map<string, string>();
  flatten(fa.signed, '', left, bound);
  flatten(fb.signed, '', right, bound);
  const changes: DiffLine[] = [];
  for (const [path, v] of left) {
    const w = right.get(path);
    if (w === undefined) changes.push({ op: 'removed', path, from: v });
    else if (w !== v) changes.push({ op: 'changed', path, from: v, to: w });
  }
  for (const [path, w] of right) if (!left.has(path)) changes.push({ op: 'added', path, to: w });
  changes.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return {
    gun,
    role,
    from: { version: fa.version, expires: fa.signed.expires },
    to: { version: fb.version, expires: fb.signed.expires },
    changes: changes.slice(0, o.maxChanges),
    truncated: changes.length > o.maxChanges,
  };
}

export interface ExpiringItem {
  gun: string;
  role: string;
  version: number;
  expires: string;
  state: ExpiryState;
  /** The command that re-signs it (notary CLI). */
  command: string;
}

/** The notary command that re-signs a role with a new expiry. */
export function resignCommand(gun: string, role: string): string {
  const q = (s: string) => (/^[A-Za-z0-9._:/@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  // As docs/operations.md says: a root is signed anew with every change of it; a snapshot with
  // any publish (or hand its key to Signet once); targets and delegations by a witness.
  if (role === 'root') return `notary key rotate ${q(gun)} timestamp -r`;
  if (role === 'snapshot') return `notary key rotate ${q(gun)} snapshot -r`;
  return `notary witness ${q(gun)} ${q(role)} -p`;
}

/** Owner-signed roles expiring within `windowMs` (expired ones included), across repositories. */
export async function expiringAcross(ctx: ServiceContext, o: { windowMs: number; warningMs: number; only?: readonly string[] | undefined; limit: number }) {
  const now = ctx.now();
  const rows = await ctx.stores.summaries.expiringBefore(new Date(now + o.windowMs), o.only, o.limit);
  const items: ExpiringItem[] = [];
  for (const r of rows) {
    for (const e of r.expiries) {
      if (Date.parse(e.expires) >= now + o.windowMs) continue;
      items.push({
        gun: r.gun,
        role: e.role,
        version: e.version,
        expires: e.expires,
        state: expiryState(e.expires, now, o.warningMs)!,
        command: resignCommand(r.gun, e.role),
      });
    }
  }
  items.sort((x, y) => Date.parse(x.expires) - Date.parse(y.expires) || (x.gun < y.gun ? -1 : 1));
  return { count: items.length, items: items.slice(0, o.limit), truncated: items.length > o.limit };
}

/** The audit trail, newest first, optionally limited to some repositories. */
export async function auditTrail(
  ctx: ServiceContext,
  q: AuditQuery & { actor?: string | undefined; action?: string | undefined; only?: readonly string[] | undefined },
) {
  return ctx.stores.audit.read(q);
}

/** Every repository with current metadata, by name (what a login asks the token service about). */
export function repositoryNames(ctx: ServiceContext): Promise<string[]> {
  return ctx.stores.summaries.names();
}
