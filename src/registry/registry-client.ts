/**
 * A client of the OCI distribution API (registry v2), for what Signet's client side needs of a
 * registry: resolve a tag to the digest and size that trust data signs, read manifests and blobs,
 * and push blobs and manifests (Cosign signatures).
 *
 * Docker's conventions throughout:
 * - Docker Hub (`docker.io`) answers at `registry-1.docker.io`, over https only;
 * - scheme: https; a registry on loopback (127.0.0.0/8, ::1, localhost, or a name resolving
 *   there) or listed in `insecureRegistries` (host[:port] or CIDR) is tried over https first and
 *   then over plain http when it does not speak TLS. Unlike docker, certificates of such
 *   registries are still verified when they do speak TLS;
 * - trusted CAs: the system roots, the `ca` option, and every `*.crt` in
 *   `<certsDir>/<host:port>/` (default `$DOCKER_CONFIG/certs.d`);
 * - auth: a 401's `WWW-Authenticate` challenge decides. Bearer: a token from the realm for
 *   `repository:<name>:<actions>`, asked with the registry's credentials (Basic) or an identity
 *   token (OAuth refresh grant), or anonymously; tokens are cached per scope for their
 *   `expires_in` (at least 60 s, as docker assumes). Basic: the credentials themselves. The
 *   request is retried once with them.
 *
 * Every failure is a RegistryError with a stable code and a one-line message naming the registry
 * host and, where there is one, the repository and tag or digest. No message carries a credential.
 */
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import { headerValue, HttpClient, isPlaintextPeer, TransportError, type HttpMethod, type HttpResponse } from '../net/http-client.js';
import { CredentialsError, DockerConfigCredentials, dockerConfigDir, type CredentialSource, type RegistryCredentials } from './docker-config.js';
import {
  DEFAULT_TAG,
  DOCKER_HUB,
  isSha256Digest,
  isValidTag,
  manifestReference,
  parseImageReference,
  registryApiHost,
  type ImageReference,
} from './reference.js';
import { RegistryError, type RegistryErrorCode } from './errors.js';
import { fetchToken, MIN_TOKEN_LIFETIME_S, parseChallenge, registrySays, type Challenge } from './token-auth.js';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

const MANIFEST_TYPES: readonly string[] = Object.values(MEDIA_TYPES);
const ACCEPT = MANIFEST_TYPES.join(', ');

/** A repository in a registry: an ImageReference will do. */
export type RepositoryRef = Pick<ImageReference, 'registry' | 'repository'>;

export interface ManifestDescriptor {
  /** `sha256:<hex>` of the manifest's bytes. */
  digest: string;
  size: number;
  mediaType: string;
}

export interface Manifest extends ManifestDescriptor {
  bytes: Buffer;
}

export interface BlobDescriptor {
  digest: string;
  size: number;
}

/** A descriptor as an OCI index lists it (the referrers API's answer, the tag-schema fallback). */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface Referrers {
  descriptors: OciDescriptor[];
  /** `api`: the registry's referrers API answered; `tag-schema`: the `sha256-<hex>` index tag (OCI 1.1's fallback) was read. */
  source: 'api' | 'tag-schema';
}

/** Whether the registry took a manifest's `subject` (the `OCI-Subject` header of its answer). */
export interface PutManifestResult extends ManifestDescriptor {
  subjectAccepted: boolean;
}

/** At most this many referrers are read for one digest. */
export const MAX_REFERRERS = 1000;

export interface RegistryClientOptions {
  /** Where credentials come from; default the docker config in `dockerConfigDir`. */
  credentials?: CredentialSource;
  /** Default `$DOCKER_CONFIG`, else `~/.docker`. */
  dockerConfigDir?: string;
  /** PEM CA certificates trusted for every registry and token service, besides the system roots. */
  ca?: string | Buffer;
  /** Per-host CA directories (`<certsDir>/<host:port>/*.crt`); default `<dockerConfigDir>/certs.d`; `null` for none. */
  certsDir?: string | null;
  /** Registries (host[:port], or CIDR ranges) that may be reached over plain http. */
  insecureRegistries?: string[];
  timeoutMs?: number;
  /** Largest manifest accepted; default 4 MiB (the distribution registry's own limit). */
  maxManifestBytes?: number;
  /** Largest blob getBlob reads into memory; default 64 MiB. */
  maxBlobBytes?: number;
  userAgent?: string;
}

interface HostState {
  registry: string;
  apiHost: string;
  /** Known once a request got through. */
  scheme?: 'https' | 'http';
  mayUseHttp?: Promise<boolean>;
  challenge?: Challenge;
  tokens: Map<string, { token: string; expiresAt: number }>;
}

type Actions = 'pull' | 'pull,push';

const DEFAULT_MAX_MANIFEST = 4 * 1024 * 1024;
const DEFAULT_MAX_BLOB = 64 * 1024 * 1024;
const TOKEN_MARGIN_MS = 5_000;

/** The referrers tag schema's tag for a digest: `sha256-<hex>`. */
export const referrersTag = (digest: string) => digest.replace(':', '-');

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function isLoopbackAddress(address: string): boolean {
  if (isIP(address) === 4) return address.startsWith('127.');
  const a = address.toLowerCase();
  return a === '::1' || a.startsWith('::ffff:127.');
}

/** Host part of `host[:port]` / `[v6]:port`. */
function hostOnly(hostPort: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(hostPort);
  if (v6) return v6[1]!;
  const colon = hostPort.lastIndexOf(':');
  return colon > 0 && hostPort.indexOf(':') === colon ? hostPort.slice(0, colon) : hostPort;
}

export class RegistryClient {
  private readonly credentials: CredentialSource;
  private readonly certsDir: string | null;
  private readonly insecureHosts = new Set<string>();
  private readonly insecureRanges = new BlockList();
  private readonly clients = new Map<string, HttpClient>();
  private readonly hosts = new Map<string, HostState>();
  private readonly credentialCache = new Map<string, Promise<RegistryCredentials | undefined>>();
  private readonly maxManifestBytes: number;
  private readonly maxBlobBytes: number;

  constructor(private readonly options: RegistryClientOptions = {}) {
    const configDir = options.dockerConfigDir ?? dockerConfigDir();
    this.credentials = options.credentials ?? new DockerConfigCredentials({ dir: configDir });
    this.certsDir = options.certsDir === undefined ? path.join(configDir, 'certs.d') : options.certsDir;
    for (const entry of options.insecureRegistries ?? []) {
      const cidr = /^(.+)\/(\d+)$/.exec(entry);
      const family = cidr ? isIP(cidr[1]!) : 0;
      if (cidr && family) this.insecureRanges.addSubnet(cidr[1]!, Number(cidr[2]), family === 6 ? 'ipv6' : 'ipv4');
      else this.insecureHosts.add(entry.replace(/^https?:\/\//, '').replace(/\/+$/, ''));
    }
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST;
    this.maxBlobBytes = options.maxBlobBytes ?? DEFAULT_MAX_BLOB;
  }

  /** Close idle connections so that a short-lived process can exit at once. */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** Digest, size and media type of the manifest a reference names (by digest, else tag, else `latest`). */
  async resolveManifest(reference: ImageReference | string): Promise<ManifestDescriptor> {
    const ref = typeof reference === 'string' ? parseImageReference(reference) : reference;
    const target = manifestReference(ref);
    const res = await this.send(ref, 'pull', 'HEAD', `manifests/${target}`, { accept: ACCEPT }, undefined, this.maxManifestBytes);
    if (res.status === 200) {
      const digest = headerValue(res.headers, 'docker-content-digest')?.trim();
      const mediaType = this.mediaTypeOf(res);
      const size = Number(headerValue(res.headers, 'content-length'));
      if (digest && isSha256Digest(digest) && mediaType && Number.isSafeInteger(size) && size >= 0) {
        if (ref.digest && digest !== ref.digest) throw this.mismatch(ref, digest);
        return { digest, size, mediaType };
      }
    }
    // A HEAD answer without what is needed, or a refusal (HEAD carries no body to say why): GET
    // reads the manifest itself, or the registry's explanation.
    const { bytes: _bytes, ...descriptor } = await this.getManifest(ref);
    return descriptor;
  }

  /** The manifest's bytes as stored; by digest, the bytes are checked against it. */
  async getManifest(reference: ImageReference | string): Promise<Manifest> {
    const ref = typeof reference === 'string' ? parseImageReference(reference) : reference;
    const target = manifestReference(ref);
    const what = `manifest ${this.describe(ref)}`;
    const res = await this.send(ref, 'pull', 'GET', `manifests/${target}`, { accept: ACCEPT }, undefined, this.maxManifestBytes);
    this.checkStatus(ref, res, [200], what);
    const bytes = res.body;
    const digest = sha256(bytes);
    if (ref.digest && digest !== ref.digest) throw this.mismatch(ref, digest);
    const announced = headerValue(res.headers, 'docker-content-digest')?.trim();
    if (!ref.digest && announced && isSha256Digest(announced) && announced !== digest) {
      throw new RegistryError('DIGEST_MISMATCH', ref.registry, `${what}: the registry announced ${announced} but sent bytes of ${digest}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new RegistryError(
        'BAD_RESPONSE',
        ref.registry,
        `${what}: the answer is not JSON (content type ${headerValue(res.headers, 'content-type') ?? 'none'})`,
      );
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new RegistryError('BAD_RESPONSE', ref.registry, `${what}: the answer is not a JSON object`);
    const body = parsed as { schemaVersion?: unknown; mediaType?: unknown; manifests?: unknown; config?: unknown };
    if (body.schemaVersion !== 2)
      throw new RegistryError('BAD_RESPONSE', ref.registry, `${what}: not a schema 2 manifest (schemaVersion ${JSON.stringify(body.schemaVersion)})`);
    const mediaType =
      this.mediaTypeOf(res) ??
      (typeof body.mediaType === 'string' && MANIFEST_TYPES.includes(body.mediaType) ? body.mediaType : undefined) ??
      (body.mediaType === undefined && Array.isArray(body.manifests) ? MEDIA_TYPES.ociIndex : undefined) ??
      (body.mediaType === undefined && typeof body.config === 'object' ? MEDIA_TYPES.ociManifest : undefined);
    if (!mediaType) {
      const said = typeof body.mediaType === 'string' ? body.mediaType : (headerValue(res.headers, 'content-type') ?? 'none');
      throw new RegistryError('BAD_RESPONSE', ref.registry, `${what}: unsupported manifest media type ${JSON.stringify(said.slice(0, 100))}`);
    }
    return { digest, size: bytes.length, mediaType, bytes };
  }

  /** A blob's bytes, checked against its digest. */
  async getBlob(repo: RepositoryRef, digest: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
    if (!isSha256Digest(digest)) throw new RegistryError('BAD_REQUEST', repo.registry, `${repo.repository}: ${JSON.stringify(digest)} is not a sha256 digest`);
    const what = `blob ${repo.repository}@${digest}`;
    const res = await this.send(repo, 'pull', 'GET', `blobs/${digest}`, {}, undefined, options.maxBytes ?? this.maxBlobBytes);
    this.checkStatus(repo, res, [200], what);
    const actual = sha256(res.body);
    if (actual !== digest) throw new RegistryError('DIGEST_MISMATCH', repo.registry, `${what}: the registry sent bytes of ${actual}`);
    return res.body;
  }

  /** Whether the repository holds a blob. */
  async hasBlob(repo: RepositoryRef, digest: string, actions: Actions = 'pull'): Promise<boolean> {
    const res = await this.send(repo, actions, 'HEAD', `blobs/${digest}`, {}, undefined, 0);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    this.checkStatus(repo, res, [200], `blob ${repo.repository}@${digest}`);
    return false;
  }

  /** Upload a blob in one piece (POST then PUT with the digest); nothing is sent when it is already there. */
  async pushBlob(repo: RepositoryRef, bytes: Buffer): Promise<BlobDescriptor> {
    const digest = sha256(bytes);
    const what = `blob upload to ${repo.repository}`;
    if (await this.hasBlob(repo, digest, 'pull,push')) return { digest, size: bytes.length };
    const started = await this.send(repo, 'pull,push', 'POST', 'blobs/uploads/', {}, Buffer.alloc(0), 64 * 1024);
    this.checkStatus(repo, started, [202], what);
    const location = headerValue(started.headers, 'location');
    if (!location) throw new RegistryError('BAD_RESPONSE', repo.registry, `${what}: no Location for the upload`);
    let upload: URL;
    try {
      upload = new URL(location, started.url);
    } catch {
      throw new RegistryError('BAD_RESPONSE', repo.registry, `${what}: unusable upload Location`);
    }
    upload.searchParams.set('digest', digest);
    const done = await this.send(repo, 'pull,push', 'PUT', upload, { 'content-type': 'application/octet-stream' }, bytes, 64 * 1024);
    this.checkStatus(repo, done, [201], what);
    return { digest, size: bytes.length };
  }

  /** Store a manifest under a tag (or its digest); its blobs must be there already. */
  async putManifest(repo: RepositoryRef, reference: string, bytes: Buffer, mediaType: string): Promise<PutManifestResult> {
    if (!isValidTag(reference) && !isSha256Digest(reference)) {
      throw new RegistryError('BAD_REQUEST', repo.registry, `${repo.repository}: ${JSON.stringify(reference)} is neither a tag nor a sha256 digest`);
    }
    const digest = sha256(bytes);
    const what = `manifest ${repo.repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    if (isSha256Digest(reference) && reference !== digest) throw new RegistryError('DIGEST_MISMATCH', repo.registry, `${what}: the bytes given are ${digest}`);
    const res = await this.send(repo, 'pull,push', 'PUT', `manifests/${reference}`, { 'content-type': mediaType }, bytes, 64 * 1024);
    this.checkStatus(repo, res, [200, 201], what);
    const announced = headerValue(res.headers, 'docker-content-digest')?.trim();
    if (announced && isSha256Digest(announced) && announced !== digest) {
      throw new RegistryError('DIGEST_MISMATCH', repo.registry, `${what}: the registry stored ${announced}, the bytes sent are ${digest}`);
    }
    return { digest, size: bytes.length, mediaType, subjectAccepted: headerValue(res.headers, 'oci-subject') !== undefined };
  }

  /**
   * The manifests that name `digest` as their subject (OCI distribution 1.1): the referrers API
   * when the registry has it, else the referrers tag schema (`sha256-<hex>` holding an index), as
   * the spec tells clients to. `artifactType` filters (client-side too: a registry may ignore it).
   * A registry with neither has no referrers: an empty list.
   */
  async getReferrers(repo: RepositoryRef, digest: string, options: { artifactType?: string } = {}): Promise<Referrers> {
    if (!isSha256Digest(digest)) throw new RegistryError('BAD_REQUEST', repo.registry, `${repo.repository}: ${JSON.stringify(digest)} is not a sha256 digest`);
    const what = `referrers of ${repo.repository}@${digest}`;
    const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
    const res = await this.send(repo, 'pull', 'GET', `referrers/${digest}${query}`, { accept: MEDIA_TYPES.ociIndex }, undefined, this.maxManifestBytes);
    let descriptors: OciDescriptor[];
    let source: Referrers['source'];
    // A registry with the API answers 200 (an empty index when there is nothing); 404 and 405 mean it has none.
    if (res.status === 200 && this.mediaTypeOf(res) === MEDIA_TYPES.ociIndex) {
      descriptors = this.indexDescriptors(repo, res.body, what);
      source = 'api';
    } else if (res.status === 404 || res.status === 405 || res.status === 400 || res.status === 200) {
      source = 'tag-schema';
      const tag = referrersTag(digest);
      let index: Manifest;
      try {
        index = await this.getManifest(this.at(repo, tag));
      } catch (error) {
        if (error instanceof RegistryError && error.code === 'NOT_FOUND') return { descriptors: [], source };
        throw error;
      }
      if (index.mediaType !== MEDIA_TYPES.ociIndex) throw new RegistryError('BAD_RESPONSE', repo.registry, `${what}: tag ${tag} is not an OCI index`);
      descriptors = this.indexDescriptors(repo, index.bytes, what);
    } else {
      this.checkStatus(repo, res, [200], what);
      throw new RegistryError('BAD_RESPONSE', repo.registry, `${what}: unexpected answer`);
    }
    const wanted = options.artifactType;
    return { descriptors: wanted ? descriptors.filter((d) => d.artifactType === wanted) : descriptors, source };
  }

  /**
   * Store a manifest that names a subject, by its digest, and make it findable: when the registry
   * does not say it took the subject (no `OCI-Subject` header), add it to the referrers tag-schema
   * index `sha256-<hex>` (read, append, write: as go-containerregistry does, not atomic against
   * another writer of the same subject at the same moment).
   */
  async putReferrer(
    repo: RepositoryRef,
    bytes: Buffer,
    descriptor: { subject: string; artifactType: string; annotations?: Record<string, string> },
  ): Promise<PutManifestResult> {
    const stored = await this.putManifest(repo, sha256(bytes), bytes, MEDIA_TYPES.ociManifest);
    if (stored.subjectAccepted) return stored;
    const tag = referrersTag(descriptor.subject);
    let manifests: OciDescriptor[] = [];
    try {
      const index = await this.getManifest(this.at(repo, tag));
      manifests = this.indexDescriptors(repo, index.bytes, `referrers index ${repo.repository}:${tag}`);
    } catch (error) {
      if (!(error instanceof RegistryError && error.code === 'NOT_FOUND')) throw error;
    }
    if (manifests.some((m) => m.digest === stored.digest)) return stored;
    const entry: OciDescriptor = {
      mediaType: MEDIA_TYPES.ociManifest,
      digest: stored.digest,
      size: stored.size,
      artifactType: descriptor.artifactType,
      ...(descriptor.annotations && Object.keys(descriptor.annotations).length ? { annotations: descriptor.annotations } : {}),
    };
    const index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [...manifests, entry] };
    await this.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), MEDIA_TYPES.ociIndex);
    return stored;
  }

  /** A reference to `tagOrDigest` in `repo`. */
  at(repo: RepositoryRef, tagOrDigest: string): ImageReference {
    const name = `${repo.registry}/${repo.repository}`;
    const base = { registry: repo.registry, repository: repo.repository, name, familiar: name };
    return isSha256Digest(tagOrDigest) ? { ...base, digest: tagOrDigest } : { ...base, tag: tagOrDigest };
  }

  private indexDescriptors(repo: RepositoryRef, bytes: Buffer, what: string): OciDescriptor[] {
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new RegistryError('BAD_RESPONSE', repo.registry, `${what}: the index is not JSON`);
    }
    const manifests = (body as { manifests?: unknown } | null)?.manifests;
    if (!Array.isArray(manifests)) throw new RegistryError('BAD_RESPONSE', repo.registry, `${what}: the index has no manifests list`);
    const out: OciDescriptor[] = [];
    for (const m of manifests.slice(0, MAX_REFERRERS)) {
      const d = m as Record<string, unknown> | null;
      if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || !isSha256Digest(d.digest) || typeof d.mediaType !== 'string') continue;
      const size = typeof d.size === 'number' && Number.isSafeInteger(d.size) && d.size >= 0 ? d.size : 0;
      const annotations =
        typeof d.annotations === 'object' && d.annotations !== null && !Array.isArray(d.annotations)
          ? Object.fromEntries(Object.entries(d.annotations as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'))
          : undefined;
      out.push({
        mediaType: d.mediaType,
        digest: d.digest,
        size,
        ...(typeof d.artifactType === 'string' ? { artifactType: d.artifactType } : {}),
        ...(annotations ? { annotations } : {}),
      });
    }
    return out;
  }

  // ---- internals ----

  /** `repository[:tag][@digest]` (the message names the registry already), with docker's `latest` when neither is given. */
  private describe(ref: ImageReference): string {
    const tag = ref.tag ?? (ref.digest === undefined ? DEFAULT_TAG : undefined);
    return `${ref.repository}${tag !== undefined ? `:${tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
  }

  private mismatch(ref: ImageReference, actual: string): RegistryError {
    return new RegistryError('DIGEST_MISMATCH', ref.registry, `manifest ${this.describe(ref)}: the registry sent ${actual}`);
  }

  private mediaTypeOf(res: HttpResponse): string | undefined {
    const type = headerValue(res.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
    return type && MANIFEST_TYPES.includes(type) ? type : undefined;
  }

  /** Turn an unexpected status into the error it stands for. */
  private checkStatus(repo: RepositoryRef, res: HttpResponse, ok: number[], what: string): void {
    if (ok.includes(res.status)) return;
    const said = registrySays(res.body);
    const status = { status: res.status };
    if (res.status === 404) throw new RegistryError('NOT_FOUND', repo.registry, `${what}: not found${said}`, status);
    if (res.status === 401) throw new RegistryError('UNAUTHORIZED', repo.registry, `${what}: not authorized${said}`, status);
    if (res.status === 403) throw new RegistryError('DENIED', repo.registry, `${what}: access denied${said}`, status);
    throw new RegistryError('BAD_RESPONSE', repo.registry, `${what}: unexpected HTTP ${res.status}${said}`, status);
  }

  private host(registry: string): HostState {
    let h = this.hosts.get(registry);
    if (!h) {
      h = { registry, apiHost: registryApiHost(registry), tokens: new Map() };
      this.hosts.set(registry, h);
    }
    return h;
  }

  /** docker's rule: loopback registries and the listed insecure ones may fall back to http. */
  private mayUseHttp(h: HostState): Promise<boolean> {
    h.mayUseHttp ??= (async () => {
      if (h.registry === DOCKER_HUB) return false;
      const name = hostOnly(h.apiHost);
      if (this.insecureHosts.has(h.apiHost) || this.insecureHosts.has(name)) return true;
      if (name.toLowerCase() === 'localhost') return true;
      let addresses: { address: string; family: number }[];
      try {
        addresses = isIP(name) ? [{ address: name, family: isIP(name) }] : await lookup(name, { all: true });
      } catch {
        return false; // the request itself will say the host is unknown
      }
      return addresses.some((a) => isLoopbackAddress(a.address) || this.insecureRanges.check(a.address, a.family === 6 ? 'ipv6' : 'ipv4'));
    })();
    return h.mayUseHttp;
  }

  private clientFor(hostPort: string): HttpClient {
    let c = this.clients.get(hostPort);
    if (!c) {
      const pems: string[] = [];
      if (this.options.ca) pems.push(this.options.ca.toString());
      if (this.certsDir) {
        const dir = path.join(this.certsDir, hostPort);
        let names: string[] = [];
        try {
          names = readdirSync(dir).filter((n) => n.endsWith('.crt'));
        } catch {
          // no directory for this host: nothing to add
        }
        for (const n of names.sort()) pems.push(readFileSync(path.join(dir, n), 'utf8'));
      }
      c = new HttpClient({
        ...(pems.length ? { ca: pems.join('\n') } : {}),
        ...(this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {}),
        userAgent: this.options.userAgent ?? 'signet',
      });
      this.clients.set(hostPort, c);
    }
    return c;
  }

  private async credentialsFor(registry: string): Promise<RegistryCredentials | undefined> {
    let p = this.credentialCache.get(registry);
    if (!p) {
      p = this.credentials.get(registry);
      this.credentialCache.set(registry, p);
      p.catch(() => this.credentialCache.delete(registry));
    }
    try {
      return await p;
    } catch (e) {
      if (e instanceof CredentialsError) throw new RegistryError(e.code, registry, e.message, { cause: e });
      throw e;
    }
  }

  private transportError(registry: string, e: unknown): never {
    if (!(e instanceof TransportError)) throw e;
    const code: RegistryErrorCode = e.code === 'TLS' || e.code === 'TIMEOUT' || e.code === 'UNREACHABLE' ? e.code : 'BAD_RESPONSE';
    const hint = isPlaintextPeer(e)
      ? ' (list it in insecureRegistries to allow plain http)'
      : e.code === 'TLS' && this.certsDir
        ? ` (trust its CA with the ca option or in ${path.join(this.certsDir, registry, 'ca.crt')})`
        : '';
    throw new RegistryError(code, registry, `${e.message}${hint}`, { cause: e });
  }

  /** One request on the registry's API, over the scheme that works, with the scheme's fallback. */
  private async exchange(
    h: HostState,
    method: HttpMethod,
    where: string | URL,
    headers: Record<string, string>,
    body: Buffer | undefined,
    maxBytes: number,
  ): Promise<HttpResponse> {
    const client = this.clientFor(h.registry);
    const urlFor = (scheme: string) => (typeof where === 'string' ? new URL(`${scheme}://${h.apiHost}${where}`) : where);
    const scheme = typeof where === 'string' ? (h.scheme ?? 'https') : (where.protocol.slice(0, -1) as 'https' | 'http');
    // https before the host's scheme is known is a guess; requests made at once all guess, and
    // each that meets a plain http server falls back, whichever of them learnt the scheme first.
    const guessed = typeof where === 'string' && h.scheme === undefined;
    const req = { method, headers, maxBytes, ...(body ? { body } : {}) };
    try {
      const res = await client.request({ ...req, url: urlFor(scheme) });
      if (typeof where === 'string') h.scheme ??= scheme;
      return res;
    } catch (e) {
      if (guessed && h.scheme !== 'https' && isPlaintextPeer(e) && (await this.mayUseHttp(h))) {
        try {
          const res = await client.request({ ...req, url: urlFor('http') });
          h.scheme = 'http';
          return res;
        } catch (e2) {
          this.transportError(h.registry, e2);
        }
      }
      this.transportError(h.registry, e);
    }
  }

  /** The Authorization header for a scope under the host's challenge, fetching a token if needed. */
  private async authorization(h: HostState, scope: string, fresh: boolean): Promise<string | undefined> {
    const challenge = h.challenge;
    if (!challenge) return undefined;
    const creds = await this.credentialsFor(h.registry);
    if (challenge.scheme === 'basic') {
      if (creds?.username === undefined || creds.password === undefined) return undefined;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const key = `${challenge.realm} ${challenge.service ?? ''} ${scope}`;
    const cached = h.tokens.get(key);
    if (!fresh && cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    let realmHost: string;
    try {
      realmHost = new URL(challenge.realm ?? '').host;
    } catch {
      realmHost = h.registry;
    }
    let answer: { token: string; lifetimeS: number };
    try {
      answer = await fetchToken(this.clientFor(realmHost), challenge, scope, creds, h.registry);
    } catch (e) {
      this.transportError(h.registry, e);
    }
    const { token, lifetimeS } = answer;
    h.tokens.set(key, { token, expiresAt: Date.now() + Math.max(lifetimeS, MIN_TOKEN_LIFETIME_S) * 1000 - TOKEN_MARGIN_MS });
    return `Bearer ${token}`;
  }

  /**
   * A request for `/v2/<repository>/<path>` (or an absolute URL the registry gave, such as an
   * upload location), authorised for `actions` on the repository: with what the host's challenge
   * asks for when it is known, else without; on a 401, the challenge is (re)read, a fresh
   * authorisation obtained, and the request sent once more.
   */
  private async send(
    repo: RepositoryRef,
    actions: Actions,
    method: HttpMethod,
    where: string | URL,
    headers: Record<string, string>,
    body: Buffer | undefined,
    maxBytes: number,
  ): Promise<HttpResponse> {
    const h = this.host(repo.registry);
    const target = typeof where === 'string' ? `/v2/${repo.repository}/${where}` : where;
    const scope = `repository:${repo.repository}:${actions}`;
    // Credentials go to the registry's own host only, never to a host an upload Location names.
    const ours = typeof target === 'string' || target.host === h.apiHost;
    const withAuth = (auth: string | undefined) => (auth && ours ? { ...headers, authorization: auth } : headers);
    const first = await this.authorization(h, scope, false);
    const res = await this.exchange(h, method, target, withAuth(first), body, maxBytes);
    if (res.status !== 401) return res;
    const challenge = parseChallenge(headerValue(res.headers, 'www-authenticate'));
    if (!challenge) {
      throw new RegistryError(
        'UNAUTHORIZED',
        repo.registry,
        `${repo.repository}: HTTP 401 without a usable WWW-Authenticate challenge${registrySays(res.body)}`,
        {
          status: 401,
        },
      );
    }
    h.challenge = challenge;
    const second = await this.authorization(h, scope, true);
    if (!second)
      throw new RegistryError(
        'UNAUTHORIZED',
        repo.registry,
        `${repo.repository}: the registry asks for credentials and none are configured for ${repo.registry}`,
        { status: 401 },
      );
    const retried = second === first ? res : await this.exchange(h, method, target, withAuth(second), body, maxBytes);
    if (retried.status === 401) {
      const creds = await this.credentialsFor(repo.registry);
      const who = creds ? 'the configured credentials' : `anonymous access (no credentials for ${repo.registry})`;
      throw new RegistryError('UNAUTHORIZED', repo.registry, `${repo.repository}: ${actions} refused to ${who}${registrySays(retried.body)}`, { status: 401 });
    }
    return retried;
  }
}
