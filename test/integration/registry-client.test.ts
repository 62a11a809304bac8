/**
 * The registry client against a real registry (Debian's docker-registry, distribution 2.8): tags
 * resolved to the digest and size of what was pushed (docker v2 manifest, OCI index), by digest,
 * the blob and manifest pushes Cosign will need, docker's credentials (config.json `auths`, a
 * credential helper on PATH) through the bearer token flow, TLS with a private CA, and registries
 * that are missing or answer garbage: every failure a RegistryError with its code and a one-line
 * message naming the registry, never a crash and never a credential.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DockerConfigCredentials,
  MEDIA_TYPES,
  parseImageReference,
  RegistryClient,
  RegistryError,
  staticCredentials,
  type RegistryClientOptions,
} from '../../src/registry/index.js';
import { startRegistry, type PushedImage, type TestRegistry } from '../support/registry.js';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const SECRET = 'open-sesame-4711';

const clients: RegistryClient[] = [];
const dirs: string[] = [];
function client(options: RegistryClientOptions = {}): RegistryClient {
  const c = new RegistryClient({ credentials: staticCredentials({}), certsDir: null, timeoutMs: 10_000, ...options });
  clients.push(c);
  return c;
}
function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}
/** A docker config directory holding `config` as config.json. */
function dockerConfig(config: unknown): string {
  const d = tempDir('signet-docker-config-');
  writeFileSync(path.join(d, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return d;
}

/** Assert a RegistryError (or any SignetError) with this code, whose one-line message matches. */
async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<Error> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, `expected ${code}, got ${String(caught)}`);
  assert.equal((caught as { code?: string }).code, code, caught.message);
  assert.ok(!caught.message.includes('\n'), `one line: ${caught.message}`);
  assert.ok(!caught.message.includes(SECRET), `no credential: ${caught.message}`);
  if (message) assert.match(caught.message, message);
  return caught;
}

after(() => {
  for (const c of clients) c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('registry client: plain registry on loopback (https tried, then http)', () => {
  let reg: TestRegistry;
  let image: PushedImage;
  let index: PushedImage & { manifests: PushedImage[] };
  before(async () => {
    reg = await startRegistry();
    image = await reg.pushImage('team/app', 'v1');
    index = await reg.pushIndex('team/multi', 'v2');
  });
  after(() => reg.stop());

  test('resolves a tag to the digest and size of the docker v2 manifest pushed', async () => {
    const got = await client().resolveManifest(`${reg.host}/team/app:v1`);
    assert.deepEqual(got, { digest: image.digest, size: image.size, mediaType: MEDIA_TYPES.dockerManifest });
    assert.equal(image.digest, sha256(image.bytes));
  });

  test('many first requests at once: each falls back to http, not only the one that learns the scheme', async () => {
    const c = client();
    const got = await Promise.all(Array.from({ length: 32 }, () => c.resolveManifest(`${reg.host}/team/app:v1`)));
    assert.ok(got.every((g) => g.digest === image.digest));
  });

  test('resolves an OCI index, and each of its manifests by digest', async () => {
    const c = client();
    assert.deepEqual(await c.resolveManifest(`${reg.host}/team/multi:v2`), { digest: index.digest, size: index.size, mediaType: MEDIA_TYPES.ociIndex });
    for (const m of index.manifests) {
      assert.deepEqual(await c.resolveManifest(`${reg.host}/team/multi@${m.digest}`), { digest: m.digest, size: m.size, mediaType: MEDIA_TYPES.ociManifest });
    }
  });

  test('by digest (with or without a tag) and as bytes, checked against the digest', async () => {
    const c = client();
    assert.equal((await c.resolveManifest(`${reg.host}/team/app@${image.digest}`)).digest, image.digest);
    assert.equal((await c.resolveManifest(`${reg.host}/team/app:ignored@${image.digest}`)).digest, image.digest);
    const m = await c.getManifest(parseImageReference(`${reg.host}/team/app@${image.digest}`));
    assert.deepEqual(m.bytes, image.bytes);
    assert.equal(m.mediaType, MEDIA_TYPES.dockerManifest);
    const byTag = await c.getManifest(`${reg.host}/team/app:v1`);
    assert.equal(byTag.digest, image.digest);
  });

  test('an unknown tag, digest or repository is NOT_FOUND naming registry, repository and tag', async () => {
    const c = client();
    await rejectsWith(c.resolveManifest(`${reg.host}/team/app:v9`), 'NOT_FOUND', new RegExp(`registry ${reg.host}: manifest team/app:v9: not found`));
    await rejectsWith(c.resolveManifest(`${reg.host}/team/app@sha256:${'0'.repeat(64)}`), 'NOT_FOUND', /team\/app@sha256:0{64}/);
    await rejectsWith(c.resolveManifest(`${reg.host}/team/nothing`), 'NOT_FOUND', /team\/nothing:latest/);
  });

  test('pushes blobs and a manifest (what a Cosign signature needs), then reads them back', async () => {
    const c = client();
    const repo = { registry: reg.host, repository: 'team/app' };
    const payload = Buffer.from('{"critical":{"identity":{"docker-reference":"x"}}}');
    const blob = await c.pushBlob(repo, payload);
    assert.deepEqual(blob, { digest: sha256(payload), size: payload.length });
    assert.deepEqual(await c.pushBlob(repo, payload), blob, 'pushing again finds it there');
    assert.deepEqual(await c.getBlob(repo, blob.digest), payload);
    const config = await c.pushBlob(repo, Buffer.from('{}'));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', ...blob }],
      }),
    );
    const tag = `sha256-${image.digest.slice(7)}.sig`;
    const put = await c.putManifest(repo, tag, manifest, MEDIA_TYPES.ociManifest);
    assert.equal(put.digest, sha256(manifest));
    const { subjectAccepted, ...descriptor } = put;
    assert.equal(subjectAccepted, false, 'distribution 2.8 does not take subjects (no OCI-Subject header)');
    assert.deepEqual(await c.resolveManifest(`${reg.host}/team/app:${tag}`), descriptor);
    await rejectsWith(c.getBlob(repo, `sha256:${'1'.repeat(64)}`), 'NOT_FOUND');
    await rejectsWith(c.putManifest(repo, `sha256:${'2'.repeat(64)}`, manifest, MEDIA_TYPES.ociManifest), 'DIGEST_MISMATCH');
  });

  test('an unknown host or a port where nothing listens is UNREACHABLE, in one line', async () => {
    const c = client();
    await rejectsWith(
      c.resolveManifest('registry.signet-test.invalid/team/app:v1'),
      'UNREACHABLE',
      /^registry registry\.signet-test\.invalid: .*host not found/,
    );
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await rejectsWith(c.resolveManifest(`127.0.0.1:${port}/team/app:v1`), 'UNREACHABLE', /connection refused/);
  });
});

describe('registry client: token auth and docker credentials', () => {
  let reg: TestRegistry;
  let image: PushedImage;
  let ref: string;
  const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');
  before(async () => {
    reg = await startRegistry({ users: [{ name: 'alice', password: SECRET, repositories: ['team/'], actions: ['pull'] }] });
    image = await reg.pushImage('team/app', 'v1');
    ref = `${reg.host}/team/app:v1`;
  });
  after(() => reg.stop());

  test('bearer flow with `auths` (base64 user:password) from DOCKER_CONFIG; the token is cached per scope', async () => {
    const dir = dockerConfig({ auths: { [reg.host]: { auth: basic('alice', SECRET) } } });
    const c = new RegistryClient({ dockerConfigDir: dir });
    clients.push(c);
    const before = reg.tokenRequests();
    assert.deepEqual(await c.resolveManifest(ref), { digest: image.digest, size: image.size, mediaType: MEDIA_TYPES.dockerManifest });
    assert.equal(reg.tokenRequests() - before, 1);
    await c.getManifest(ref);
    await c.resolveManifest(`${reg.host}/team/app@${image.digest}`);
    assert.equal(reg.tokenRequests() - before, 1, 'one token for repository:team/app:pull');
  });

  test('docker legacy keys (https://host/…) and username/password fields match too', async () => {
    for (const auths of [
      { [`https://${reg.host}/v1/`]: { auth: basic('alice', SECRET) } },
      { [`http://${reg.host}`]: { username: 'alice', password: SECRET } },
    ]) {
      const c = new RegistryClient({ dockerConfigDir: dockerConfig({ auths }) });
      clients.push(c);
      assert.equal((await c.resolveManifest(ref)).digest, image.digest);
    }
  });

  test('wrong credentials, none, or no right on the repository: UNAUTHORIZED, without the secret', async () => {
    const wrong = new RegistryClient({ dockerConfigDir: dockerConfig({ auths: { [reg.host]: { auth: basic('alice', `${SECRET}-not`) } } }) });
    const none = new RegistryClient({ dockerConfigDir: dockerConfig({ auths: { 'other.example.com': { auth: basic('alice', SECRET) } } }) });
    const alice = new RegistryClient({ dockerConfigDir: dockerConfig({ auths: { [reg.host]: { auth: basic('alice', SECRET) } } }) });
    clients.push(wrong, none, alice);
    await rejectsWith(wrong.resolveManifest(ref), 'UNAUTHORIZED', /refused the credentials/);
    await rejectsWith(none.resolveManifest(ref), 'UNAUTHORIZED', /anonymous/);
    await reg.pushImage('other/app', 'v1');
    await rejectsWith(alice.resolveManifest(`${reg.host}/other/app:v1`), 'UNAUTHORIZED', /other\/app/);
    // alice may pull but not push.
    await rejectsWith(alice.pushBlob({ registry: reg.host, repository: 'team/app' }, Buffer.from('x')), 'UNAUTHORIZED', /pull,push/);
  });

  test('a credential helper on PATH (credHelpers, and credsStore) is asked with the registry host on stdin', async () => {
    const bin = tempDir('signet-cred-bin-');
    const helper = path.join(bin, 'docker-credential-test');
    writeFileSync(
      helper,
      [
        '#!/bin/sh',
        '[ "$1" = get ] || exit 3',
        'read -r server',
        `if [ "$server" = "${reg.host}" ]; then`,
        `  printf '{"ServerURL":"%s","Username":"alice","Secret":"${SECRET}"}' "$server"`,
        'else',
        '  echo "credentials not found in native keychain"; exit 1',
        'fi',
        '',
      ].join('\n'),
    );
    chmodSync(helper, 0o755);
    writeFileSync(path.join(bin, 'docker-credential-broken'), `#!/bin/sh\necho "keychain locked"\nexit 2\n`);
    chmodSync(path.join(bin, 'docker-credential-broken'), 0o755);
    const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env['PATH'] ?? ''}` };
    const viaHelper = (config: unknown) => {
      const c = new RegistryClient({ credentials: new DockerConfigCredentials({ dir: dockerConfig(config), env }), certsDir: null });
      clients.push(c);
      return c;
    };
    // The helper wins over an `auths` entry for the same host, as in docker.
    const helped = viaHelper({ credHelpers: { [reg.host]: 'test' }, auths: { [reg.host]: { auth: basic('alice', 'stale') } } });
    assert.equal((await helped.resolveManifest(ref)).digest, image.digest);
    assert.equal((await viaHelper({ credsStore: 'test' }).resolveManifest(ref)).digest, image.digest);

    const missing = viaHelper({ credHelpers: { [reg.host]: 'absent' } });
    await rejectsWith(missing.resolveManifest(ref), 'CREDENTIALS', /docker-credential-absent .*not found on PATH/);
    const broken = viaHelper({ credsStore: 'broken' });
    const e = await rejectsWith(broken.resolveManifest(ref), 'CREDENTIALS', /docker-credential-broken .*failed \(exit 2\): keychain locked/);
    assert.ok(e instanceof RegistryError);
    // "credentials not found" from the helper means no credentials, not a failure.
    const elsewhere = new DockerConfigCredentials({ dir: dockerConfig({ credsStore: 'test' }), env });
    assert.equal(await elsewhere.get('x.example.com'), undefined);
    assert.deepEqual(await elsewhere.get(reg.host), { username: 'alice', password: SECRET });
  });

  test('a docker config that is not JSON, or holds a bad `auth`, is an error naming the file', async () => {
    const bad = dockerConfig('{ "auths": ');
    const c = new RegistryClient({ dockerConfigDir: bad });
    clients.push(c);
    await rejectsWith(c.resolveManifest(ref), 'DOCKER_CONFIG', new RegExp(`${path.join(bad, 'config.json').replace(/[/.]/g, '\\$&')} is not valid JSON`));
    const badAuth = new DockerConfigCredentials({ dir: dockerConfig({ auths: { [reg.host]: { auth: 'not base64!' } } }) });
    await rejectsWith(badAuth.get(reg.host), 'DOCKER_CONFIG', /"auth" of .* is not base64 of user:password/);
    const unreadable = tempDir('signet-docker-config-');
    mkdirSync(path.join(unreadable, 'config.json'));
    await rejectsWith(new DockerConfigCredentials({ dir: unreadable }).get(reg.host), 'DOCKER_CONFIG', /cannot read docker config/);
    assert.equal(await new DockerConfigCredentials({ dir: tempDir('signet-docker-config-') }).get(reg.host), undefined, 'no file: no credentials');
  });

  test("Docker Hub's credentials live under https://index.docker.io/v1/", async () => {
    const creds = new DockerConfigCredentials({
      dir: dockerConfig({ auths: { 'https://index.docker.io/v1/': { auth: basic('bob', SECRET) }, 'docker.io': { auth: basic('eve', 'x') } } }),
    });
    assert.deepEqual(await creds.get('docker.io'), { username: 'bob', password: SECRET });
    const tokens = new DockerConfigCredentials({ dir: dockerConfig({ auths: { [reg.host]: { identitytoken: 'id-tok', registrytoken: 'reg-tok' } } }) });
    assert.deepEqual(await tokens.get(reg.host), { identityToken: 'id-tok', registryToken: 'reg-tok' });
  });
});

describe('registry client: TLS with a private CA', () => {
  let reg: TestRegistry;
  let image: PushedImage;
  before(async () => {
    reg = await startRegistry({ tls: true });
    image = await reg.pushImage('team/app', 'v1');
  });
  after(() => reg.stop());

  test('trusted through the ca option', async () => {
    assert.equal((await client({ ca: reg.caPem! }).resolveManifest(`${reg.host}/team/app:v1`)).digest, image.digest);
  });

  test('trusted through $DOCKER_CONFIG/certs.d/<host:port>/ca.crt', async () => {
    const dir = tempDir('signet-docker-config-');
    mkdirSync(path.join(dir, 'certs.d', reg.host), { recursive: true });
    writeFileSync(path.join(dir, 'certs.d', reg.host, 'ca.crt'), reg.caPem!);
    const c = new RegistryClient({ dockerConfigDir: dir });
    clients.push(c);
    assert.equal((await c.resolveManifest(`${reg.host}/team/app:v1`)).digest, image.digest);
  });

  test('without its CA: TLS, and no fallback to http since the registry speaks TLS', async () => {
    const dir = tempDir('signet-docker-config-');
    const c = new RegistryClient({ dockerConfigDir: dir });
    clients.push(c);
    const e = await rejectsWith(c.resolveManifest(`${reg.host}/team/app:v1`), 'TLS');
    assert.ok(e.message.includes(path.join(dir, 'certs.d', reg.host, 'ca.crt')), e.message);
  });
});

describe('registry client: a registry that answers garbage', () => {
  let server: http.Server;
  let raw: net.Server;
  const rawSockets = new Set<net.Socket>();
  let host: string;
  let rawHost: string;
  const GOOD = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config: {}, layers: [] }));
  before(async () => {
    server = http.createServer((req, res) => {
      const [, , name] = (req.url ?? '').split('?')[0]!.split('/'); // /v2/<name>/manifests/<ref>
      const send = (status: number, headers: Record<string, string>, body: string | Buffer = '') => {
        res.writeHead(status, headers);
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      switch (name) {
        case 'html':
          return send(200, { 'content-type': 'text/html' }, '<html>hello</html>');
        case 'notjson':
          return send(200, { 'content-type': MEDIA_TYPES.dockerManifest }, '{"schemaVersion": 2, "layers": [');
        case 'schema1':
          return send(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, '{"schemaVersion":1}');
        case 'baddigest':
          return send(200, { 'content-type': MEDIA_TYPES.dockerManifest, 'docker-content-digest': 'md5:zzz' }, GOOD);
        case 'liar':
          return send(200, { 'content-type': MEDIA_TYPES.dockerManifest, 'docker-content-digest': sha256('other') }, GOOD);
        case 'swap':
          return send(200, { 'content-type': MEDIA_TYPES.dockerManifest }, GOOD);
        case 'error500':
          return send(500, { 'content-type': 'application/json' }, '{"errors":[{"code":"UNKNOWN","message":"boom\\nsecond line"}]}');
        case 'huge':
          return send(200, { 'content-type': MEDIA_TYPES.dockerManifest }, Buffer.alloc(5 * 1024 * 1024, 0x20));
        case 'norealm':
          return send(401, { 'www-authenticate': 'Bearer service="x"' });
        case 'nochallenge':
          return send(401, {});
        case 'badtoken':
          return send(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="x"` });
        default:
          if (req.url?.startsWith('/token')) return send(200, { 'content-type': 'application/json' }, 'not json');
          if (name === 'fine') return send(200, { 'content-type': MEDIA_TYPES.dockerManifest }, GOOD);
          return send(404, {}, 'nope');
      }
    });
    // On every interface: the tests of http for hosts off loopback reach it by another address.
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    raw = net.createServer((socket) => {
      rawSockets.add(socket);
      socket.on('close', () => rawSockets.delete(socket));
      socket.on('error', () => {});
      socket.end('\x00\x01garbage that is not HTTP\r\n\r\n');
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    rawHost = `127.0.0.1:${(raw.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    // The raw server's half-closed sockets would hold its close() forever.
    for (const s of rawSockets) s.destroy();
    await new Promise<void>((r) => raw.close(() => r()));
  });

  test('content that is no manifest, a bad status, an oversized answer: BAD_RESPONSE', async () => {
    const c = client();
    await rejectsWith(c.resolveManifest(`${host}/html/x:v1`), 'BAD_RESPONSE', /html\/x:v1: the answer is not JSON \(content type text\/html\)/);
    await rejectsWith(c.resolveManifest(`${host}/notjson/x:v1`), 'BAD_RESPONSE', /not JSON/);
    await rejectsWith(c.resolveManifest(`${host}/schema1/x:v1`), 'BAD_RESPONSE', /schema 2/);
    await rejectsWith(c.resolveManifest(`${host}/error500/x:v1`), 'BAD_RESPONSE', /unexpected HTTP 500 \(UNKNOWN: boom second line\)/);
    await rejectsWith(c.resolveManifest(`${host}/huge/x:v1`), 'BAD_RESPONSE', /4194304 bytes allowed/);
    await rejectsWith(c.resolveManifest(`${rawHost}/any/x:v1`), 'BAD_RESPONSE', /not an HTTP answer/);
  });

  test('a digest header that is no digest is ignored (the bytes decide); one that is not the bytes is DIGEST_MISMATCH', async () => {
    const c = client();
    assert.deepEqual(await c.resolveManifest(`${host}/baddigest/x:v1`), { digest: sha256(GOOD), size: GOOD.length, mediaType: MEDIA_TYPES.dockerManifest });
    await rejectsWith(c.resolveManifest(`${host}/liar/x:v1`), 'DIGEST_MISMATCH', /announced/);
    // Asked by digest, a registry sending other bytes is caught.
    await rejectsWith(c.getManifest(`${host}/swap/x@${sha256('something else')}`), 'DIGEST_MISMATCH', /swap\/x@sha256:/);
    await rejectsWith(c.resolveManifest(`${host}/swap/x@${sha256('something else')}`), 'DIGEST_MISMATCH');
  });

  test('broken auth challenges and token services: UNAUTHORIZED or BAD_RESPONSE', async () => {
    const c = client({ credentials: staticCredentials({ [host]: { username: 'u', password: SECRET } }) });
    await rejectsWith(c.resolveManifest(`${host}/nochallenge/x:v1`), 'UNAUTHORIZED', /without a usable WWW-Authenticate/);
    const c2 = client({ credentials: staticCredentials({ [host]: { username: 'u', password: SECRET } }) });
    await rejectsWith(c2.resolveManifest(`${host}/norealm/x:v1`), 'BAD_RESPONSE', /realm/);
    const c3 = client({ credentials: staticCredentials({ [host]: { username: 'u', password: SECRET } }) });
    await rejectsWith(c3.resolveManifest(`${host}/badtoken/x:v1`), 'BAD_RESPONSE', /token service .* did not answer JSON/);
  });

  test('plain http only on loopback or for registries listed as insecure (host:port or CIDR)', async (t) => {
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!external) return t.skip('no non-loopback IPv4 address on this machine');
    const port = host.split(':')[1]!;
    const there = `${external}:${port}/fine/x:v1`;
    assert.equal((await client().resolveManifest(`${host}/fine/x:v1`)).digest, sha256(GOOD), 'loopback: http after https');
    await rejectsWith(client().resolveManifest(there), 'TLS', /https:\/\/.*does not speak TLS.*insecureRegistries/);
    assert.equal((await client({ insecureRegistries: [`${external}:${port}`] }).resolveManifest(there)).digest, sha256(GOOD));
    assert.equal((await client({ insecureRegistries: [`${external}/32`] }).resolveManifest(there)).digest, sha256(GOOD));
  });
});
