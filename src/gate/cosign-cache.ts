/**
 * Cosign results for the gate: per Cosign trust source, repository and digest, which of the
 * source's keys signed the digest (either storage format), read from the image's registry and
 * shared by every request. Also the tag → digest lookups of images given by tag.
 *
 * The same model as the Notary trust cache: a result is answered from memory; once it is older
 * than the policy's refresh interval the next lookup starts a refresh in the background and is
 * still answered from memory, until the result is twice that old, when lookups wait for a fresh
 * one (so a signature removed from the registry stops counting within two refresh intervals).
 * Concurrent misses share one fetch, and a failure is answered from memory for COSIGN_FAILURE_MEMORY_MS
 * instead of asking the registry again at once. A tag's digest is used for one refresh interval.
 *
 * The verifier (and with it sigstore-js) and the registry client are loaded on the first Cosign
 * lookup, not at start: a gate with Notary sources only starts as fast as before.
 */
import { createHash } from 'node:crypto';
import type { CredentialSource, ImageReference, RegistryClient, RepositoryRef } from '../registry/index.js';
import { CosignError } from '../cosign/errors.js';
import { RegistryError } from '../registry/errors.js';
import type { CosignVerification, SignatureFormat } from '../cosign/verify.js';
import type { CosignSource } from './policy.js';

/** How long a failed lookup is answered from memory (as the Notary trust cache's FAILURE_MEMORY_MS). */
export const COSIGN_FAILURE_MEMORY_MS = 2_000;

interface Entry<T> {
  value?: T;
  fetchedAt: number;
  inflight?: Promise<T>;
  failure?: { at: number; error: unknown };
}

export interface CosignCacheStats {
  fetches: number;
  hits: number;
  refreshes: number;
  /** Tag → digest lookups sent to a registry. */
  resolves: number;
}

type Verifier = typeof import('../cosign/verify.js');
let verifier: Promise<Verifier> | undefined;
const loadVerifier = () => (verifier ??= import('../cosign/verify.js'));

const FORMATS: readonly SignatureFormat[] = ['tag', 'bundle'];

/** What a source's registry client depends on: a new one when any of it changes. */
function settingsOf(source: CosignSource): string {
  return createHash('sha256')
    .update(JSON.stringify([source.auth ?? null, source.ca ?? null]))
    .digest('hex');
}

/** Which keys and Rekor keys a result was computed with: results of other keys are not reused. */
function keysOf(source: CosignSource): string {
  const rekor = (source.rekorKeys ?? []).map((k) => k.export({ type: 'spki', format: 'der' }).toString('base64'));
  return createHash('sha256')
    .update(JSON.stringify([[...source.keyIds], rekor, source.rekorURL ?? null]))
    .digest('hex');
}

class CosignSourceState {
  private client?: Promise<RegistryClient>;
  private closed = false;
  readonly settings: string;
  readonly keys: string;
  readonly results = new Map<string, Entry<CosignVerification>>();
  readonly tags = new Map<string, Entry<string>>();
  constructor(readonly source: CosignSource) {
    this.settings = settingsOf(source);
    this.keys = keysOf(source);
  }

  /** The registry client of this source: its credentials (sent to `auth.registry` only, when given), else the docker config's. */
  registry(): Promise<RegistryClient> {
    this.client ??= (async () => {
      const [{ RegistryClient }, { DockerConfigCredentials }] = await Promise.all([
        import('../registry/registry-client.js'),
        import('../registry/docker-config.js'),
      ]);
      const docker = new DockerConfigCredentials();
      const auth = this.source.auth;
      const credentials: CredentialSource = {
        get: (registry) =>
          auth && (auth.registry === undefined || auth.registry === registry)
            ? Promise.resolve({ username: auth.username, password: auth.password })
            : docker.get(registry),
      };
      return new RegistryClient({ credentials, timeoutMs: 10_000, userAgent: 'signet-gate', ...(this.source.ca ? { ca: this.source.ca } : {}) });
    })();
    return this.client;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.client?.then((c) => c.close());
  }
}

export class GateCosignCache {
  private readonly sources = new Map<string, CosignSourceState>();
  readonly stats: CosignCacheStats = { fetches: 0, hits: 0, refreshes: 0, resolves: 0 };

  constructor(
    private refreshMs: number,
    private readonly onRefreshError: (source: string, subject: string, err: unknown) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Take a new policy's Cosign sources; a source whose keys or registry settings changed starts afresh. */
  configure(sources: Iterable<CosignSource>, refreshMs: number): void {
    this.refreshMs = refreshMs;
    const next = new Map<string, CosignSourceState>();
    for (const source of sources) {
      const old = this.sources.get(source.name);
      next.set(source.name, old && old.settings === settingsOf(source) && old.keys === keysOf(source) ? old : new CosignSourceState(source));
    }
    for (const [name, state] of this.sources) if (next.get(name) !== state) state.close();
    this.sources.clear();
    for (const [k, v] of next) this.sources.set(k, v);
  }

  close(): void {
    for (const s of this.sources.values()) s.close();
  }

  private state(name: string): CosignSourceState {
    const state = this.sources.get(name);
    if (!state) throw new Error(`no Cosign trust source ${name}`);
    return state;
  }

  /** The cached result when it can be used as it is (no waiting); starts a background refresh when one is due. */
  peek(name: string, repo: RepositoryRef, digest: string): CosignVerification | null {
    const state = this.sources.get(name);
    const key = `${repo.registry}/${repo.repository}@${digest}`;
    const entry = state?.results.get(key);
    if (!state || !entry?.value) return null;
    const age = this.now() - entry.fetchedAt;
    if (age >= 2 * this.refreshMs) return null;
    this.stats.hits++;
    if (age > this.refreshMs && !entry.inflight) {
      this.stats.refreshes++;
      this.verify(state, repo, digest, entry).catch((err: unknown) => this.onRefreshError(name, key, err));
    }
    return entry.value;
  }

  /** Which keys of source `name` signed `digest` in `repo`: cached, or read from the registry (once for concurrent callers). */
  async verification(name: string, repo: RepositoryRef, digest: string): Promise<CosignVerification> {
    const cached = this.peek(name, repo, digest);
    if (cached) return cached;
    const state = this.state(name);
    const key = `${repo.registry}/${repo.repository}@${digest}`;
    const entry = state.results.get(key);
    if (entry?.inflight) return entry.inflight;
    if (entry?.failure && this.now() - entry.failure.at < COSIGN_FAILURE_MEMORY_MS) return Promise.reject(entry.failure.error);
    return this.verify(state, repo, digest, entry ?? { fetchedAt: 0 });
  }

  /** The digest a tag names in the registry now (a HEAD of the manifest), used for one refresh interval. */
  async digestOf(name: string, ref: ImageReference): Promise<string> {
    const state = this.state(name);
    const key = `${ref.name}:${ref.tag ?? 'latest'}`;
    const entry = state.tags.get(key) ?? { fetchedAt: 0 };
    const now = this.now();
    if (entry.value && now - entry.fetchedAt < this.refreshMs) return entry.value;
    if (entry.inflight) return entry.inflight;
    if (entry.failure && now - entry.failure.at < COSIGN_FAILURE_MEMORY_MS) return Promise.reject(entry.failure.error);
    state.tags.set(key, entry);
    this.stats.resolves++;
    const inflight = (async () => (await state.registry()).resolveManifest({ ...ref, digest: undefined } as ImageReference))().then(
      (d) => {
        entry.value = d.digest;
        entry.fetchedAt = this.now();
        delete entry.inflight;
        delete entry.failure;
        return d.digest;
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

  private verify(state: CosignSourceState, repo: RepositoryRef, digest: string, entry: Entry<CosignVerification>): Promise<CosignVerification> {
    state.results.set(`${repo.registry}/${repo.repository}@${digest}`, entry);
    this.stats.fetches++;
    const inflight = readBothFormats(state, repo, digest).then(
      (value) => {
        entry.value = value;
        entry.fetchedAt = this.now();
        delete entry.inflight;
        delete entry.failure;
        return value;
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
}

/** Failures of the registry itself (not of what it holds): they fail the whole lookup, which is then remembered briefly. */
const CONNECTIVITY = new Set(['UNREACHABLE', 'TIMEOUT', 'TLS', 'UNAUTHORIZED', 'DENIED', 'CREDENTIALS', 'DOCKER_CONFIG']);

/**
 * Both formats, each read on its own: signature data of one format that is not what cosign
 * writes (a `.sig` manifest with garbage, a referrers index tag that is not an index) is a
 * problem of that format, and the other still counts. A registry that cannot be reached, or
 * refuses the gate, fails the whole lookup. (Neither can admit anything: only a signature that
 * verifies does.)
 */
async function readBothFormats(state: CosignSourceState, repo: RepositoryRef, digest: string): Promise<CosignVerification> {
  const [{ verifyCosignSignatures }, client] = await Promise.all([loadVerifier(), state.registry()]);
  const source = state.source;
  const options = {
    keys: source.keys,
    ...(source.rekorKeys ? { rekorKeys: source.rekorKeys } : {}),
    ...(source.rekorURL ? { rekorURL: source.rekorURL } : {}),
  };
  const parts = await Promise.all(
    FORMATS.map((format) =>
      verifyCosignSignatures(client, repo, digest, { ...options, formats: [format] }).catch((error: unknown) => {
        const code = (error as { code?: unknown }).code;
        const ofTheData =
          (error instanceof CosignError && error.code === 'BAD_SIGNATURE_DATA') || (error instanceof RegistryError && !CONNECTIVITY.has(String(code)));
        if (!ofTheData) throw error;
        return { digest, signers: [], evidence: [], problems: [`${format} format: ${(error as Error).message}`], found: 1 } satisfies CosignVerification;
      }),
    ),
  );
  const signers = [...new Set(parts.flatMap((p) => p.signers))];
  return {
    digest,
    signers,
    evidence: parts.flatMap((p) => p.evidence),
    problems: parts.flatMap((p) => p.problems),
    found: parts.reduce((n, p) => n + p.found, 0),
  };
}
