/**
 * Trust data for the gate: per trust source and repository, the trusted set verified from the
 * pinned root keys (the SDK's client workflow), shared by every request. A cached set is used
 * until the earliest expiry among its files (never past the timestamp's), refreshed in the
 * background once it is older than the policy's refresh interval, and concurrent misses for one
 * repository share one fetch. Versions seen stay in memory for the life of the process, so a
 * server rolled back to older trust data is refused.
 */
import { HttpClient } from '../net/http-client.js';
import { NotaryRepository } from '../client/repository.js';
import { TrustServer } from '../client/trust-server.js';
import { MemoryMetadataCache } from '../client/trust-store.js';
import { repositoryAuthenticator } from '../registry/token-auth.js';
import type { TrustedSet } from '../tuf/notary/trusted-set.js';
import { GateCosignCache } from './cosign-cache.js';
import type { CosignSource, TrustSource } from './policy.js';

interface Entry {
  set?: TrustedSet;
  /** The delegations loaded into `set` (the roles rules asked for so far). */
  roles: Set<string>;
  fetchedAt: number;
  expiresAt: number;
  inflight?: Promise<TrustedSet>;
  /** The last failure, repeated for FAILURE_MEMORY_MS instead of asking the trust source again. */
  failure?: { at: number; error: unknown };
}

/** How long a failed fetch (no trust data, a server that is down) is answered from memory. */
export const FAILURE_MEMORY_MS = 2_000;

export interface TrustCacheStats {
  fetches: number;
  hits: number;
  refreshes: number;
}

/** The earliest expiry of the files a trusted set holds: the set is good until then. */
function earliestExpiry(set: TrustedSet): number {
  let min = set.timestamp!.file.expiresMs;
  min = Math.min(min, set.snapshot!.file.expiresMs, set.root.file.expiresMs);
  const walk = (role: string) => {
    const file = set.targets(role);
    if (!file) return;
    min = Math.min(min, file.file.expiresMs);
    for (const d of set.delegationsOf(role)) walk(d.name);
  };
  walk('targets');
  return min;
}

class SourceState {
  readonly http: HttpClient;
  readonly metadata = new MemoryMetadataCache();
  readonly entries = new Map<string, Entry>();
  constructor(readonly source: TrustSource) {
    this.http = new HttpClient({ ...(source.ca ? { ca: source.ca, caMode: 'only' as const } : {}), userAgent: 'signet-gate', timeoutMs: 10_000 });
  }
}

export class GateTrustCache {
  private readonly sources = new Map<string, SourceState>();
  readonly stats: TrustCacheStats = { fetches: 0, hits: 0, refreshes: 0 };
  /** The Cosign results of the Cosign trust sources, on the same refresh interval. */
  readonly cosign: GateCosignCache;

  constructor(
    private refreshMs: number,
    private readonly onRefreshError: (source: string, gun: string, err: unknown) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    this.cosign = new GateCosignCache(refreshMs, onRefreshError, now);
  }

  /** Take a new policy's sources (Notary, and Cosign); a source whose settings changed starts afresh. */
  configure(sources: Iterable<TrustSource>, refreshMs: number, cosignSources: Iterable<CosignSource> = []): void {
    this.refreshMs = refreshMs;
    this.cosign.configure(cosignSources, refreshMs);
    const next = new Map<string, SourceState>();
    for (const source of sources) {
      const old = this.sources.get(source.name);
      next.set(source.name, old && sameSource(old.source, source) ? old : new SourceState(source));
    }
    for (const [name, state] of this.sources) if (next.get(name) !== state) state.http.close();
    this.sources.clear();
    for (const [k, v] of next) this.sources.set(k, v);
  }

  close(): void {
    for (const s of this.sources.values()) s.http.close();
    this.cosign.close();
  }

  /**
   * The cached trusted set when it can be used as it is (no waiting): the common case, answered
   * without a promise or a timer. Starts a background refresh when it is due.
   */
  peek(name: string, gun: string, roles: readonly string[]): TrustedSet | null {
    const state = this.sources.get(name);
    const entry = state?.entries.get(gun);
    const now = this.now();
    if (!state || !entry?.set || now >= entry.expiresAt || !roles.every((r) => entry.roles.has(r))) return null;
    this.stats.hits++;
    if (now - entry.fetchedAt > this.refreshMs && !entry.inflight) {
      this.stats.refreshes++;
      this.fetch(state, gun, entry).catch((err: unknown) => this.onRefreshError(name, gun, err));
    }
    return entry.set;
  }

  /** The trusted set of `gun` from trust source `name`: cached, or fetched (once for concurrent callers). */
  async trustedSet(name: string, gun: string, roles: readonly string[]): Promise<TrustedSet> {
    const state = this.sources.get(name);
    if (!state) throw new Error(`no trust source ${name}`);
    const now = this.now();
    const entry = state.entries.get(gun);
    if (entry && !roles.every((r) => entry.roles.has(r))) {
      // A rule needs delegations not loaded yet: fetch again with them (after any fetch under way).
      for (const r of roles) entry.roles.add(r);
      if (entry.inflight) await entry.inflight.catch(() => undefined);
      delete entry.failure;
      return this.fetch(state, gun, entry);
    }
    if (entry?.set && now < entry.expiresAt) {
      this.stats.hits++;
      if (now - entry.fetchedAt > this.refreshMs && !entry.inflight) {
        this.stats.refreshes++;
        this.fetch(state, gun, entry).catch((err: unknown) => this.onRefreshError(name, gun, err));
      }
      return entry.set;
    }
    if (entry?.inflight) return entry.inflight;
    if (entry?.failure && now - entry.failure.at < FAILURE_MEMORY_MS) return Promise.reject(entry.failure.error);
    return this.fetch(state, gun, entry ?? { fetchedAt: 0, expiresAt: 0, roles: new Set(roles) });
  }

  private fetch(state: SourceState, gun: string, entry: Entry): Promise<TrustedSet> {
    state.entries.set(gun, entry);
    this.stats.fetches++;
    const source = state.source;
    const credentials = { get: () => Promise.resolve(source.auth ? { username: source.auth.username, password: source.auth.password } : undefined) };
    const repository = new NotaryRepository({
      gun,
      server: new TrustServer(gun, {
        url: source.url,
        http: state.http,
        authenticate: repositoryAuthenticator({ http: state.http, credentials, registry: source.name, repository: gun }),
      }),
      store: state.metadata,
      pinning: { rootKeys: source.rootKeys },
      now: this.now,
    });
    const roles = new Set(entry.roles);
    const inflight = repository.update('pull', { delegations: (role) => roles.has(role) }).then(
      (set) => {
        entry.set = set;
        entry.fetchedAt = this.now();
        entry.expiresAt = earliestExpiry(set);
        delete entry.inflight;
        delete entry.failure;
        return set;
      },
      (err: unknown) => {
        delete entry.inflight;
        entry.failure = { at: this.now(), error: err };
        throw err;
      },
    );
    entry.inflight = inflight;
    return inflight;
  }

  /** Whether every trust source answers HTTP at all (for /readyz). */
  async reachable(): Promise<{ source: string; ok: boolean; reason?: string }[]> {
    return Promise.all(
      [...this.sources.values()].map(async (s) => {
        try {
          const res = await s.http.request({
            url: new URL('v2/', s.source.url.endsWith('/') ? s.source.url : `${s.source.url}/`),
            timeoutMs: 2_000,
            maxBytes: 64 * 1024,
          });
          return res.status < 500 ? { source: s.source.name, ok: true } : { source: s.source.name, ok: false, reason: `HTTP ${res.status}` };
        } catch (err) {
          return { source: s.source.name, ok: false, reason: (err as Error).message };
        }
      }),
    );
  }
}

function sameSource(a: TrustSource, b: TrustSource): boolean {
  const keys = (s: TrustSource) => s.rootKeys.map((k) => k.export({ type: 'spki', format: 'der' }).toString('base64')).join(',');
  return a.url === b.url && a.ca === b.ca && keys(a) === keys(b) && a.auth?.username === b.auth?.username && a.auth?.password === b.auth?.password;
}
