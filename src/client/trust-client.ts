/**
 * The SDK's entry point: `signet trust` and `signet verify` are thin shells over it. One
 * TrustClient holds the settings docker trust takes from its environment (trust directory,
 * trust server, CAs, credentials, passphrases) and opens a repository per image name.
 *
 *   const client = new TrustClient({ server: 'https://notary.example.com' });
 *   await client.sign('registry.example.com/team/app:v1');          // digest from the registry
 *   const v = await client.verify('registry.example.com/team/app:v1', { signers: ['ci', 'qa'] });
 *   client.close();
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpClient } from '../net/http-client.js';
import { parseImageReference, type ImageReference } from '../registry/reference.js';
import { dockerConfigDir, DockerConfigCredentials, type CredentialSource } from '../registry/docker-config.js';
import { RegistryClient } from '../registry/registry-client.js';
import { repositoryAuthenticator } from '../registry/token-auth.js';
import { tufKeyId } from '../tuf/core/keys.js';
import type { MetadataKey } from '../tuf/notary/metadata.js';
import type { TrustedSet } from '../tuf/notary/trusted-set.js';
import { ClientError } from './errors.js';
import { KeyRing } from './key-ring.js';
import {
  decodePrivateKeyPem,
  envPassphrases,
  generateSigningKey,
  KeyStore,
  KeyStoreError,
  withRole,
  type ClientKeyType,
  type KeyMaterial,
  type PassphraseSource,
  type SigningKey,
} from './keys/index.js';
import type { TrustPinning } from './pinning.js';
import { parsePublicKeyPem } from './public-keys.js';
import { checkSignerName, Publisher, type TargetRecord } from './publisher.js';
import { NotaryRepository } from './repository.js';
import { inspect, inspectPretty, verifyImage, type TrustRepo, type Verified, type VerifyPolicy } from './signed-state.js';
import { TrustServer, type RemoteSignAnswer } from './trust-server.js';
import { TrustStore } from './trust-store.js';
import { writeFileAtomic } from './atomic-file.js';
import { Ceremony, parseStagedReference, stagedUpdateSchema, type StagedUpdate } from './ceremony.js';
import { rootCertificate, ROOT_CERTIFICATE_VALIDITY_MS } from './keys/index.js';
import { z } from 'zod';

export const DOCKER_HUB_TRUST_SERVER = 'https://notary.docker.io';

export interface TrustClientOptions {
  /** Trust directory (keys in private/, cached metadata in tuf/); default `$DOCKER_CONFIG/trust`. */
  trustDir?: string;
  /** Trust server URL; default `$DOCKER_CONTENT_TRUST_SERVER`, else docker's rule for the registry. */
  server?: string;
  /** PEM CA bundle for the trust server; default `$DOCKER_CONFIG/tls/<host:port>/ca.crt` when present. */
  serverCa?: string;
  /** PEM CA bundle for registries (added to `$DOCKER_CONFIG/certs.d/<host>/ca.crt`). */
  registryCa?: string;
  /** Registries reached over plain http although not on loopback. */
  insecureRegistries?: string[];
  pinning?: TrustPinning;
  passphrases?: PassphraseSource;
  credentials?: CredentialSource;
  env?: NodeJS.ProcessEnv;
  /** The clock (ms since the epoch); tests fix it. */
  now?: () => number;
}

export interface SignOptions {
  /** The manifest digest and size, when known (else resolved from the registry). */
  target?: TargetRecord;
  /** Roles to sign into (default: docker's rule). */
  roles?: string[];
  /** Signer created when the repository is new (docker uses the registry user name). */
  signer?: string;
  /** For a new repository: keep the snapshot key locally instead of on the server. */
  localSnapshot?: boolean;
}

export interface SignOutcome {
  name: string;
  tag: string;
  digest: string;
  length: number;
  roles: string[];
  initialized: boolean;
}

export class TrustClient {
  readonly trustDir: string;
  readonly keys: KeyStore;
  private readonly env: NodeJS.ProcessEnv;
  private readonly configDir: string;
  private readonly credentials: CredentialSource;
  private readonly passphrases: PassphraseSource;
  private readonly https = new Map<string, HttpClient>();
  private registryClient: RegistryClient | undefined;

  constructor(private readonly options: TrustClientOptions = {}) {
    this.env = options.env ?? process.env;
    this.configDir = dockerConfigDir(this.env);
    this.trustDir = options.trustDir ?? path.join(this.configDir, 'trust');
    this.keys = new KeyStore(this.trustDir);
    this.credentials = options.credentials ?? new DockerConfigCredentials({ dir: this.configDir, env: this.env });
    this.passphrases = options.passphrases ?? envPassphrases(this.env);
  }

  /** Close the connections kept open; call when done so a process can exit at once. */
  close(): void {
    for (const h of this.https.values()) h.close();
    this.https.clear();
    this.registryClient?.close();
  }

  get registry(): RegistryClient {
    this.registryClient ??= new RegistryClient({
      credentials: this.credentials,
      dockerConfigDir: this.configDir,
      ...(this.options.registryCa ? { ca: this.options.registryCa } : {}),
      ...(this.options.insecureRegistries ? { insecureRegistries: this.options.insecureRegistries } : {}),
    });
    return this.registryClient;
  }

  /** docker's `trust.Server`: the explicit URL, `$DOCKER_CONTENT_TRUST_SERVER`, Docker Hub's, or https://<registry>. */
  serverUrl(ref: ImageReference): string {
    const explicit = this.options.server ?? this.env['DOCKER_CONTENT_TRUST_SERVER'];
    if (explicit) return explicit;
    return ref.registry === 'docker.io' ? DOCKER_HUB_TRUST_SERVER : `https://${ref.registry}`;
  }

  private httpFor(url: string): HttpClient {
    let host: string;
    try {
      host = new URL(url).host;
    } catch {
      throw new ClientError('BAD_INPUT', `not a trust server URL: ${url}`);
    }
    let client = this.https.get(host);
    if (!client) {
      let ca = this.options.serverCa;
      const dockerCa = path.join(this.configDir, 'tls', host, 'ca.crt');
      if (!ca && existsSync(dockerCa)) ca = readFileSync(dockerCa, 'utf8');
      // A trust server's CA is trusted alone, as notary's --tlscacert is.
      client = new HttpClient({ ...(ca ? { ca, caMode: 'only' as const } : {}), userAgent: 'signet-trust' });
      this.https.set(host, client);
    }
    return client;
  }

  /** A new signing key for signer `name`, stored encrypted in the trust directory (docker trust key generate). */
  async generateKey(name: string, keytype: ClientKeyType = 'ecdsa'): Promise<SigningKey> {
    checkSignerName(name);
    const key = generateSigningKey(keytype);
    const passphrase = await this.passphrases.get(name, key.keyId, { create: true });
    this.keys.save(key, { role: name }, passphrase);
    return withRole(key, name);
  }

  /** Import a PEM private key (encrypted or not) as a key of signer `name` (docker trust key load). */
  async loadKey(pem: string, name: string, file = 'the key file'): Promise<SigningKey> {
    checkSignerName(name);
    let key: KeyMaterial;
    try {
      key = decodePrivateKeyPem(pem, undefined, file).key;
    } catch (err) {
      if (!(err instanceof KeyStoreError) || err.code !== 'PASSPHRASE_REQUIRED') throw err;
      key = decodePrivateKeyPem(pem, await this.passphrases.get(name, file, { create: false }), file).key;
    }
    const passphrase = await this.passphrases.get(name, key.keyId, { create: true });
    this.keys.save(key, { role: name }, passphrase);
    return withRole(key, name);
  }

  /** Write a public key file (NAME.pub); refuses to overwrite one. */
  writePublicKey(file: string, pem: string): void {
    if (existsSync(file)) throw new ClientError('BAD_INPUT', `public key file already exists: ${file}`);
    try {
      writeFileAtomic(file, pem, 0o644);
    } catch (err) {
      throw new ClientError('BAD_INPUT', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  /** The repository named by an image reference (or a GUN). */
  open(image: string | ImageReference): { ref: ImageReference; repository: NotaryRepository; publisher: Publisher } {
    const ref = typeof image === 'string' ? parseImageReference(image) : image;
    const url = this.serverUrl(ref);
    const http = this.httpFor(url);
    const server = new TrustServer(ref.name, {
      url,
      http,
      authenticate: repositoryAuthenticator({ http, credentials: this.credentials, registry: ref.registry, repository: ref.name }),
    });
    const repository = new NotaryRepository({
      gun: ref.name,
      server,
      store: new TrustStore(this.trustDir),
      ...(this.options.pinning ? { pinning: this.options.pinning } : {}),
      ...(this.options.now ? { now: this.options.now } : {}),
    });
    return { ref, repository, publisher: new Publisher(repository, new KeyRing(this.keys, this.passphrases)) };
  }

  /** The verified trusted state of a repository (the client workflow, with the local trust store). */
  async trustedState(image: string | ImageReference): Promise<TrustedSet> {
    return this.open(image).repository.update();
  }

  /** `docker trust inspect` for one image (the JSON shape), or with `pretty` its text. */
  async inspect(image: string): Promise<TrustRepo>;
  async inspect(image: string, pretty: true): Promise<string>;
  async inspect(image: string, pretty = false): Promise<TrustRepo | string> {
    const { ref, repository } = this.open(image);
    let set: TrustedSet;
    try {
      set = await repository.update();
    } catch (err) {
      if (err instanceof ClientError && err.code === 'NOT_INITIALIZED')
        throw new ClientError('NOT_INITIALIZED', `no signatures or cannot access ${image}`, { cause: err });
      throw err;
    }
    return pretty ? inspectPretty(set, image, ref.tag) : inspect(set, image, ref.tag);
  }

  /** The trusted digest of an image and who signed it; throws NOT_TRUSTED / NO_SUCH_TARGET with the reason. */
  async verify(image: string, policy: VerifyPolicy = {}): Promise<Verified> {
    const { ref, repository } = this.open(image);
    const set = await repository.update();
    const want = ref.digest ? (ref.tag ? { tag: ref.tag, digest: ref.digest } : { digest: ref.digest }) : { tag: ref.tag ?? 'latest' };
    return verifyImage(set, ref.name, want, policy);
  }

  /** Sign IMAGE:TAG (initialising the repository with a signer when it is new, as docker does). */
  async sign(image: string, options: SignOptions = {}): Promise<SignOutcome> {
    const [outcome] = await this.signAll([image], options);
    return outcome!;
  }

  /**
   * Sign several IMAGE:TAGs: each tag's digest and size from the registry, then one publish per
   * repository. `onProgress` hears of each tag resolved.
   */
  async signAll(images: readonly string[], options: SignOptions = {}, onProgress?: (done: number, image: string) => void): Promise<SignOutcome[]> {
    if (options.target && images.length !== 1) throw new ClientError('BAD_INPUT', 'a digest and size sign one tag only');
    const groups = new Map<string, { ref: ImageReference; tag: string; image: string }[]>();
    for (const image of images) {
      const ref = parseImageReference(image);
      if (!ref.tag || ref.digest) throw new ClientError('BAD_INPUT', `sign needs IMAGE:TAG without a digest, got ${image}`);
      groups.set(ref.name, [...(groups.get(ref.name) ?? []), { ref, tag: ref.tag, image }]);
    }
    const outcomes: SignOutcome[] = [];
    let done = 0;
    for (const [, group] of groups) {
      const targets = new Map<string, TargetRecord>();
      for (const { ref, tag, image } of group) {
        targets.set(tag, options.target ?? (await this.registry.resolveManifest(ref).then((m) => ({ digest: m.digest, length: m.size }))));
        onProgress?.(++done, image);
      }
      const ref = group[0]!.ref;
      const { publisher } = this.open(ref);
      let initialized = false;
      if (!(await publisher.state())) {
        const name = options.signer ?? (await this.credentials.get(ref.registry))?.username;
        if (!name)
          throw new ClientError(
            'BAD_INPUT',
            `${ref.name} has no trust data yet: name its first signer with --signer NAME (docker uses the registry user name)`,
          );
        const keyId = publisher.keys.firstWithRole(name);
        const signerKey = keyId ? await publisher.keys.unlock(keyId) : await publisher.keys.create(name, undefined);
        await publisher.initialize({ signers: [{ name, keys: [{ ...signerKey.tufPublic() }] }], ...(options.localSnapshot ? { localSnapshot: true } : {}) });
        initialized = true;
      }
      const { byTag } = await publisher.sign(targets, options.roles);
      for (const [tag, target] of targets) {
        outcomes.push({ name: ref.name, tag, digest: target.digest, length: target.length, roles: byTag.get(tag) ?? [], initialized });
      }
    }
    return outcomes;
  }

  /** Remove the signature of IMAGE:TAG, or of every tag of IMAGE. */
  async revoke(image: string): Promise<{ tag: string; roles: string[] }[]> {
    const { ref, publisher } = this.open(image);
    return publisher.revoke(ref.tag ? [ref.tag] : []);
  }

  /** Add signer NAME with public keys (PEM `PUBLIC KEY` or `CERTIFICATE`) to REPO. */
  async addSigner(name: string, repo: string, publicKeyPems: string[], options: { threshold?: number } = {}): Promise<{ initialized: boolean }> {
    const keys: MetadataKey[] = publicKeyPems.map((pem, i) => parsePublicKeyPem(pem, `public key ${i + 1}`));
    if (keys.length === 0) throw new ClientError('BAD_INPUT', 'a signer needs at least one public key (--key FILE)');
    return this.open(repo).publisher.addSigner(name, keys, options);
  }

  /**
   * Add server-held signer NAME of REPO as a signer in one step: its delegation certificate is
   * fetched from the trust server (Signet) and delegated to like a `--key` file.
   */
  async addServerHeldSigner(name: string, repo: string, options: { threshold?: number } = {}): Promise<{ initialized: boolean; keyId: string }> {
    const { repository, publisher } = this.open(repo);
    const signer = await repository.server.serverSigner(name);
    if (!signer.certificate || !signer.keyId) throw new ClientError('BAD_INPUT', `server-held signer ${name} of ${repository.gun} has no active key`);
    if (signer.state !== 'active') throw new ClientError('BAD_INPUT', `server-held signer ${name} of ${repository.gun} is ${signer.state}`);
    const key = parsePublicKeyPem(signer.certificate, `the certificate of server-held signer ${name}`);
    if (tufKeyId(key.keytype, key.keyval.public) !== signer.keyId) {
      throw new ClientError('SERVER', `the certificate of server-held signer ${name} does not have the key ID the server names (${signer.keyId})`);
    }
    const result = await publisher.addSigner(name, [key], options);
    return { ...result, keyId: signer.keyId };
  }

  /**
   * Have server-held signer NAME sign IMAGE:TAG: the digest and size from the registry (or
   * `target`), the signing and publishing done by the trust server. No key is needed here.
   */
  async remoteSign(image: string, signer: string, options: { target?: TargetRecord; scan?: unknown; idToken?: string } = {}): Promise<RemoteSignAnswer> {
    const ref = parseImageReference(image);
    if (!ref.tag || ref.digest) throw new ClientError('BAD_INPUT', `sign needs IMAGE:TAG without a digest, got ${image}`);
    const target: TargetRecord = options.target ?? (await this.registry.resolveManifest(ref).then((m) => ({ digest: m.digest, length: m.size })));
    const digest = target.digest.startsWith('sha256:') ? target.digest : `sha256:${target.digest}`;
    const { repository } = this.open(ref);
    return repository.server.remoteSign(
      signer,
      { tag: ref.tag, digest, size: target.length, ...(options.scan !== undefined ? { scan: options.scan } : {}) },
      options.idToken,
    );
  }

  async removeSigner(name: string, repo: string, options: { force?: boolean } = {}): Promise<void> {
    return this.open(repo).publisher.removeSigner(name, options);
  }

  async rotateKey(repo: string, role: 'targets' | 'snapshot' | 'timestamp', options: { serverManaged?: boolean } = {}): Promise<{ keyId: string }> {
    return this.open(repo).publisher.rotate(role, options);
  }

  // ---- key ceremonies (staged updates on a Signet server) ----

  /** Key ceremonies of one repository: stage, list, show, sign, cancel. */
  ceremony(repo: string | ImageReference): Ceremony {
    return new Ceremony(this.open(repo).publisher);
  }

  /** A staged update named `REPO@ID` (or `ID` with `repo`): its ceremony and ID. */
  staged(ref: string, repo?: string): { ceremony: Ceremony; id: string; repo: string } {
    const parsed = parseStagedReference(ref, repo);
    return { ceremony: this.ceremony(parsed.repo), id: parsed.id, repo: parsed.repo };
  }

  /**
   * Stage the signature of IMAGE:TAG into `role` (a delegation whose threshold needs other
   * holders too): the digest and size from the registry unless given.
   */
  async stageSign(image: string, role: string, options: { target?: TargetRecord; expiresInSeconds?: number } = {}): Promise<StagedUpdate> {
    const ref = parseImageReference(image);
    if (!ref.tag || ref.digest) throw new ClientError('BAD_INPUT', `sign needs IMAGE:TAG without a digest, got ${image}`);
    const target: TargetRecord = options.target ?? (await this.registry.resolveManifest(ref).then((m) => ({ digest: m.digest, length: m.size })));
    return this.ceremony(ref).stageTargets(new Map<string, TargetRecord>([[ref.tag, target]]), role, options.expiresInSeconds);
  }

  /** Pending staged updates of every repository on the trust server named by --server or $DOCKER_CONTENT_TRUST_SERVER. */
  async listAllStaged(state?: string): Promise<StagedUpdate[]> {
    const url = this.options.server ?? this.env['DOCKER_CONTENT_TRUST_SERVER'];
    if (!url) throw new ClientError('BAD_INPUT', 'name the trust server (--server URL or $DOCKER_CONTENT_TRUST_SERVER), or a repository');
    const server = new TrustServer('', { url, http: this.httpFor(url) });
    const parsed = z.object({ staged: z.array(stagedUpdateSchema) }).safeParse(await server.listAllStaged(state));
    if (!parsed.success) throw new ClientError('SERVER', `the trust server's list of staged updates is not what Signet sends`);
    return parsed.data.staged;
  }

  /**
   * A new root key for holder `name` of REPO, stored encrypted in the trust directory, and its
   * certificate for REPO (what `stage root-rotate --new-key` takes), written to `file`.
   */
  async generateRootKey(name: string, repo: string, file: string): Promise<{ keyId: string; certificateKeyId: string }> {
    checkSignerName(name);
    const gun = parseImageReference(repo).name;
    if (existsSync(file)) throw new ClientError('BAD_INPUT', `certificate file already exists: ${file}`);
    const key = generateSigningKey('ecdsa');
    const now = this.options.now?.() ?? Date.now();
    const cert = rootCertificate(key, gun, { notBeforeMs: now, notAfterMs: now + ROOT_CERTIFICATE_VALIDITY_MS });
    const passphrase = await this.passphrases.get('root', key.keyId, { create: true });
    this.keys.save(key, { role: 'root' }, passphrase);
    this.writePublicKey(file, cert.pem);
    return { keyId: key.keyId, certificateKeyId: cert.keyId };
  }
}

/** `~/.docker` unless `$DOCKER_CONFIG` says otherwise (re-exported for the CLI). */
export function defaultTrustDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker'), 'trust');
}
