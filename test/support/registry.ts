/**
 * A real registry for tests: the Debian `docker-registry` (distribution 2.8) on a free loopback
 * port, storing in a temporary directory, optionally behind token auth (Signet's development
 * token service) and over TLS with a throwaway CA. `pushImage` and `pushIndex` upload real
 * images (config blob, one gzipped tar layer, manifest) with node's own http client, not with
 * Signet's registry client, so that tests of the client read what an independent writer wrote.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { startDevTokenService, type DevUser, type RunningTokenService } from '../../src/auth/dev-token-service.js';
import { makeTestTls, type TestTls } from './tls.js';

export const REGISTRY_BINARY = process.env['SIGNET_TEST_REGISTRY_BINARY'] ?? '/usr/bin/docker-registry';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface TestRegistryOptions {
  /** Token auth through a development token service with these users (a pushing user is added). */
  users?: DevUser[];
  /** Actions anonymous callers get (token auth only); none by default. */
  anonymousActions?: string[];
  tokenLifetimeSeconds?: number;
  /** Serve https with a certificate for 127.0.0.1/localhost from a throwaway CA. */
  tls?: boolean;
}

export interface PushedImage {
  repository: string;
  tag: string;
  digest: string;
  size: number;
  mediaType: string;
  bytes: Buffer;
}

export interface TestRegistry {
  /** `127.0.0.1:<port>`: the registry part of image references. */
  host: string;
  url: string;
  /** The CA that signed the registry's certificate (PEM), with `tls`. */
  caPem?: string;
  tls?: TestTls;
  tokenService?: RunningTokenService;
  /** `service` of the token auth, with `users`. */
  service?: string;
  /** How many token requests the realm has answered (token auth only). */
  tokenRequests(): number;
  /** An image with the docker v2 manifest (or OCI manifest with `oci`), tagged `tag`. */
  pushImage(repository: string, tag: string, options?: { oci?: boolean; platform?: string }): Promise<PushedImage>;
  /** Two OCI images (linux/amd64, linux/arm64) under an OCI index tagged `tag`. */
  pushIndex(repository: string, tag: string): Promise<PushedImage & { manifests: PushedImage[] }>;
  stop(): Promise<void>;
}

export const PUSHER = { name: 'registry-test-pusher', password: 'pusher-secret' };

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A tar archive of one regular file (ustar). */
function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'ascii');
  const octal = (offset: number, length: number, n: number) => field(offset, length, `${n.toString(8).padStart(length - 1, '0')}\0`);
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, content.length);
  octal(136, 12, 0);
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const b of header) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, ca: string | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(
      url,
      { method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) }, ...(ca ? { ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function until(child: ChildProcess, pattern: RegExp, timeoutMs: number, output: () => string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`docker-registry did not start within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    const check = () => {
      const m = pattern.exec(output());
      if (m) done(null, m);
    };
    const exited = (code: number | null) => done(new Error(`docker-registry exited (${code}) before listening:\n${output()}`));
    const done = (err: Error | null, m?: RegExpExecArray) => {
      clearTimeout(timer);
      child.stderr?.off('data', check);
      child.stdout?.off('data', check);
      child.off('exit', exited);
      if (err) reject(err);
      else resolve(m!);
    };
    child.stderr?.on('data', check);
    child.stdout?.on('data', check);
    child.once('exit', exited);
  });
}

export async function startRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'signet-registry-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c();
  };
  try {
    const tls = options.tls ? makeTestTls() : undefined;
    if (tls) cleanups.push(() => rmSync(tls.dir, { recursive: true, force: true }));
    let tokenService: RunningTokenService | undefined;
    let relay: http.Server | undefined;
    let tokenCount = 0;
    const service = 'signet-test-registry';
    const issuer = 'signet-test-token-issuer';
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'info', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: path.join(dir, 'data') }, delete: { enabled: true } },
      http: { addr: '127.0.0.1:0', secret: 'signet-test-secret', ...(tls ? { tls: { certificate: tls.cert, key: tls.key } } : {}) },
    };
    if (options.users) {
      tokenService = await startDevTokenService({
        issuer,
        service,
        users: [...options.users, { ...PUSHER, repositories: [''], actions: ['*'] }],
        ...(options.anonymousActions ? { anonymousActions: options.anonymousActions } : {}),
        ...(options.tokenLifetimeSeconds ? { tokenLifetimeSeconds: options.tokenLifetimeSeconds } : {}),
      });
      const ts = tokenService;
      cleanups.push(() => ts.close());
      // The realm the registry announces is a counting relay in front of the token service.
      relay = http.createServer((req, res) => {
        tokenCount++;
        const upstream = http.request(new URL(req.url ?? '/', ts.url), { method: req.method, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      });
      const r = relay;
      await new Promise<void>((resolve) => r.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise<void>((resolve) => r.close(() => resolve())));
      const realm = `http://127.0.0.1:${(r.address() as AddressInfo).port}/auth/token`;
      const bundle = path.join(dir, 'token-signer.pem');
      writeFileSync(bundle, tokenService.certificatePem);
      config['auth'] = { token: { realm, service, issuer, rootcertbundle: bundle } };
    }
    const configFile = path.join(dir, 'config.yml');
    writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML

    const child = spawn(REGISTRY_BINARY, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Never leave a registry behind, whatever happens to the test process.
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    let output = '';
    const collect = (c: Buffer) => {
      output = (output + c.toString()).slice(-20_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanups.push(async () => {
      process.removeListener('exit', reap);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    });
    const m = await until(child, /listening on (127\.0\.0\.1:\d+)/, 20_000, () => output);
    const host = m[1]!;
    const url = `${tls ? 'https' : 'http'}://${host}`;
    const caPem = tls ? readFileSync(tls.caCert, 'utf8') : undefined;

    const tokens = new Map<string, string>();
    const authFor = async (repository: string): Promise<Record<string, string>> => {
      if (!tokenService) return {};
      let token = tokens.get(repository);
      if (!token) {
        const realm = new URL(tokenService.realm);
        realm.searchParams.set('service', service);
        realm.searchParams.set('scope', `repository:${repository}:pull,push`);
        const basic = Buffer.from(`${PUSHER.name}:${PUSHER.password}`).toString('base64');
        const res = await request(realm, 'GET', { authorization: `Basic ${basic}` }, undefined, undefined);
        if (res.status !== 200) throw new Error(`token for pushing: HTTP ${res.status}`);
        token = (JSON.parse(res.body.toString()) as { token: string }).token;
        tokens.set(repository, token);
      }
      return { authorization: `Bearer ${token}` };
    };
    const call = async (method: string, where: string | URL, headers: Record<string, string>, body: Buffer | undefined, repository: string, expect: number) => {
      const target = typeof where === 'string' ? new URL(where, url) : where;
      const res = await request(target, method, { ...(await authFor(repository)), ...headers }, body, caPem);
      if (res.status !== expect) throw new Error(`${method} ${target.pathname}: HTTP ${res.status} (wanted ${expect}): ${res.body.toString().slice(0, 300)}`);
      return res;
    };
    const uploadBlob = async (repository: string, data: Buffer) => {
      const digest = sha256(data);
      const started = await call('POST', `/v2/${repository}/blobs/uploads/`, {}, Buffer.alloc(0), repository, 202);
      const location = new URL(String(started.headers.location), url);
      location.searchParams.set('digest', digest);
      await call('PUT', location, { 'content-type': 'application/octet-stream' }, data, repository, 201);
      return { digest, size: data.length };
    };
    const putManifest = async (repository: string, tag: string, mediaType: string, manifest: object) => {
      const bytes = Buffer.from(JSON.stringify(manifest));
      const res = await call('PUT', `/v2/${repository}/manifests/${tag}`, { 'content-type': mediaType }, bytes, repository, 201);
      const digest = sha256(bytes);
      if (res.headers['docker-content-digest'] !== digest) throw new Error(`registry stored ${String(res.headers['docker-content-digest'])}, pushed ${digest}`);
      return { repository, tag, digest, size: bytes.length, mediaType, bytes };
    };
    const pushImage = async (repository: string, tag: string, opts: { oci?: boolean; platform?: string } = {}) => {
      const [osName, architecture] = (opts.platform ?? 'linux/amd64').split('/') as [string, string];
      const tar = tarOf('image.txt', Buffer.from(`${repository}:${tag} ${opts.platform ?? 'linux/amd64'}\n`));
      const layer = await uploadBlob(repository, gzipSync(tar, { level: 9 }));
      const configBlob = await uploadBlob(
        repository,
        Buffer.from(JSON.stringify({ architecture, os: osName, rootfs: { type: 'layers', diff_ids: [sha256(tar)] }, config: {} })),
      );
      const mediaType = opts.oci ? MEDIA.ociManifest : MEDIA.dockerManifest;
      return putManifest(repository, tag, mediaType, {
        schemaVersion: 2,
        mediaType,
        config: { mediaType: opts.oci ? MEDIA.ociConfig : MEDIA.dockerConfig, ...configBlob },
        layers: [{ mediaType: opts.oci ? MEDIA.ociLayer : MEDIA.dockerLayer, ...layer }],
      });
    };
    const pushIndex = async (repository: string, tag: string) => {
      const platforms = ['linux/amd64', 'linux/arm64'];
      const manifests: PushedImage[] = [];
      for (const p of platforms) manifests.push(await pushImage(repository, `${tag}-${p.replace('/', '-')}`, { oci: true, platform: p }));
      const index = await putManifest(repository, tag, MEDIA.ociIndex, {
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: manifests.map((m, i) => {
          const [osName, architecture] = platforms[i]!.split('/');
          return { mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { architecture, os: osName } };
        }),
      });
      return { ...index, manifests };
    };

    return {
      host,
      url,
      ...(caPem ? { caPem } : {}),
      ...(tls ? { tls } : {}),
      ...(tokenService ? { tokenService, service } : {}),
      tokenRequests: () => tokenCount,
      pushImage,
      pushIndex,
      stop: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
