/**
 * Expiry watch. Metadata that silently expires is what trust-server users suffer most: clients
 * refuse it and pulls fail. Signet re-signs its own roles (timestamp, and snapshot when it holds
 * the key) well before they expire, and reports client-signed roles (root, targets, delegations)
 * that expire within a warning window, so that an admin re-signs them in time.
 */
import { readSigned, rootSchema } from '../tuf/notary/metadata.js';
import { isTargetsRole } from '../tuf/notary/roles.js';
import type { ServiceContext } from './context.js';
import { refreshServerSigned } from './read-metadata.js';
import { currentChain, loadRepositoryState } from './repository-state.js';

export interface ExpiringRole {
  gun: string;
  role: string;
  version: number;
  expires: string;
  expired: boolean;
}

export interface ExpiryScan {
  repositories: number;
  expiring: ExpiringRole[];
  resigned: string[];
}

/** Every repository's current client-signed roles expiring within `windowMs`; optionally re-sign. */
export async function scanExpiry(
  ctx: ServiceContext,
  opts: { windowMs: number; resignBeforeMs?: number; gun?: string; pauseEvery?: number },
): Promise<ExpiryScan> {
  const { metadata, serverKeys } = ctx.stores;
  const guns = opts.gun ? [opts.gun] : await metadata.repositories();
  const now = ctx.now();
  const result: ExpiryScan = { repositories: 0, expiring: [], resigned: [] };
  let seen = 0;
  for (const gun of guns) {
    // A background scan is low priority: it yields the process (and the database) to requests.
    if (opts.pauseEvery && ++seen % opts.pauseEvery === 0) await new Promise((r) => setTimeout(r, 10));
    const state = await loadRepositoryState(metadata, ctx.cache, gun);
    if (!state.root) continue;
    result.repositories++;
    for (const file of [state.root, ...state.targets.values()]) {
      if (file.expiresMs < now + opts.windowMs) {
        result.expiring.push({ gun, role: file.role, version: file.version, expires: file.signed.expires, expired: file.expiresMs < now });
      }
    }
    let snapshot = state.snapshot;
    if (opts.resignBeforeMs !== undefined) {
      const chain = await currentChain(metadata, ctx.cache, gun);
      const horizon = now + opts.resignBeforeMs;
      if (chain && (chain.timestamp.file.isExpired(horizon) || chain.snapshot?.file.isExpired(horizon))) {
        const refreshed = await refreshServerSigned(ctx, gun, opts.resignBeforeMs);
        if (refreshed.wrote) result.resigned.push(gun);
        snapshot = refreshed.chain?.snapshot?.file ?? snapshot;
      }
    }
    // A snapshot whose key the client holds needs the owner too; the server re-signs its own.
    const root = readSigned(rootSchema, state.root);
    const snapshotKeyIds = new Set(root.ok ? (root.value.roles['snapshot']?.keyids ?? []) : []);
    const serverHoldsSnapshot = (await serverKeys.ofRepository(gun)).some((k) => k.role === 'snapshot' && snapshotKeyIds.has(k.keyId));
    if (snapshot && !serverHoldsSnapshot && snapshot.expiresMs < now + opts.windowMs) {
      result.expiring.push({ gun, role: 'snapshot', version: snapshot.version, expires: snapshot.signed.expires, expired: snapshot.expiresMs < now });
    }
  }
  return result;
}

/** Count of expiring/expired roles by kind, for the metrics gauges. */
export function summarise(scan: ExpiryScan): Map<string, { expiring: number; expired: number }> {
  const out = new Map<string, { expiring: number; expired: number }>();
  for (const r of scan.expiring) {
    const kind = r.role === 'root' ? 'root' : isTargetsRole(r.role) && r.role !== 'targets' ? 'delegation' : r.role;
    const entry = out.get(kind) ?? { expiring: 0, expired: 0 };
    if (r.expired) entry.expired++;
    else entry.expiring++;
    out.set(kind, entry);
  }
  return out;
}
