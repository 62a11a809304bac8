/**
 * The client workflow against a hostile trust server: a real HTTP server that serves whatever
 * metadata the test gives it (files made with the test's own keys), and the SDK's
 * NotaryRepository with a real trust directory. Each attack of the client workflow (TUF §5,
 * tuf-notes.md) must be refused with its stable error code, and must leave the trust
 * directory as it was.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { NotaryRepository } from '../../src/client/repository.js';
import { TrustServer } from '../../src/client/trust-server.js';
import { TrustStore } from '../../src/client/trust-store.js';
import { verifyImage } from '../../src/client/signed-state.js';
import { signetErrorCode } from '../../src/tuf/core/signet-error.js';
import { certKey, ecdsaKey, inDays, rootDoc, signFile, snapshotDoc, targetsDoc, type DelegationSpec, type TestKey } from '../support/tuf-kit.js';
import { makeTestCa } from '../support/certificates.js';
import { tufKeyId } from '../../src/tuf/core/keys.js';
import type { TrustPinning } from '../../src/client/pinning.js';

const GUN = 'registry.example.com/client/attacks';
const DIGEST = 'a'.repeat(64);
const entry = (hex: string, length = 1234) => ({ hashes: { sha256: Buffer.from(hex, 'hex').toString('base64') }, length });

/** A static Notary v1 server: GET by name, by `{v}.root.json` and by `<role>.<sha256>.json`. */
class HostileServer {
  files = new Map<string, Buffer>();
  roots = new Map<number, Buffer>();
  server = http.createServer((req, res) => {
    const prefix = `/v2/${GUN}/_trust/tuf/`;
    const url = decodeURIComponent(req.url ?? '');
    if (!url.startsWith(prefix)) {
      res.writeHead(404).end();
      return;
    }
    const name = url.slice(prefix.length);
    let body: Buffer | undefined;
    const version = /^(\d+)\.root\.json$/.exec(name);
    const hashed = /^(.+)\.([0-9a-f]{64})\.json$/.exec(name);
    if (version) body = this.roots.get(Number(version[1]));
    else if (hashed) {
      // Serves the current file of that role whatever the hash asked for: a server that lies.
      body = this.files.get(hashed[1]!);
    } else body = this.files.get(name.replace(/\.json$/, ''));
    if (!body) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  url = '';
  async start() {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  stop() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface Keys {
  root: TestKey;
  targets: TestKey;
  snapshot: TestKey;
  timestamp: TestKey;
  releases: TestKey;
}

function newKeys(): Keys {
  return { root: certKey({ commonName: GUN }), targets: ecdsaKey(), snapshot: ecdsaKey(), timestamp: ecdsaKey(), releases: ecdsaKey() };
}

interface StateSpec {
  keys: Keys;
  version?: number;
  rootVersion?: number;
  timestampExpires?: string;
  releasesTargets?: Record<string, unknown>;
  releasesPaths?: string[];
  /** Sign targets/releases with this key instead of the delegated one. */
  releasesSignedBy?: TestKey;
  /** Also sign the root with these keys (the previous root's, for a rotation). */
  rootAlsoSignedBy?: TestKey[];
}

/** One consistent repository state; `version` goes into every file but root. */
function state(spec: StateSpec) {
  const k = spec.keys;
  const v = spec.version ?? 1;
  const root = signFile(rootDoc({ version: spec.rootVersion ?? 1, root: [k.root], targets: [k.targets], snapshot: [k.snapshot], timestamp: [k.timestamp] }), [
    k.root,
    ...(spec.rootAlsoSignedBy ?? []),
  ]);
  const releases: DelegationSpec = { name: 'targets/releases', keys: [k.releases], paths: spec.releasesPaths ?? [''] };
  const targets = signFile(targetsDoc({ version: v, delegations: [releases] }), [k.targets]);
  const rel = signFile(targetsDoc({ version: v, targets: spec.releasesTargets ?? { v1: entry(DIGEST) } }), [spec.releasesSignedBy ?? k.releases]);
  const snapshot = signFile(snapshotDoc({ version: v, files: { root, targets, 'targets/releases': rel } }), [k.snapshot]);
  const timestamp = signFile(
    {
      _type: 'Timestamp',
      expires: spec.timestampExpires ?? inDays(14),
      meta: { snapshot: { hashes: { sha256: createHash('sha256').update(snapshot).digest('base64') }, length: snapshot.length } },
      version: v,
    },
    [k.timestamp],
  );
  return { root, targets, 'targets/releases': rel, snapshot, timestamp };
}

let hostile: HostileServer;
let trustDir: string;

function serve(files: ReturnType<typeof state>, rootHistory: Buffer[] = [files.root]) {
  hostile.files = new Map(Object.entries(files));
  hostile.roots = new Map(rootHistory.map((r, i) => [i + 1, r]));
}

function repository(pinning?: TrustPinning) {
  return new NotaryRepository({
    gun: GUN,
    server: new TrustServer(GUN, { url: hostile.url }),
    store: new TrustStore(trustDir),
    ...(pinning ? { pinning } : {}),
  });
}

function cachedRootVersion(): number {
  const file = path.join(trustDir, 'tuf', ...GUN.split('/'), 'metadata', 'root.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { signed: { version: number } }).signed.version;
}

function cachedTimestamp(): string | null {
  const file = path.join(trustDir, 'tuf', ...GUN.split('/'), 'metadata', 'timestamp.json');
  return existsSync(file) ? readFileSync(file, 'utf8') : null;
}

async function refused(code: string, fn: () => Promise<unknown>) {
  const before = cachedTimestamp();
  await assert.rejects(fn, (err: unknown) => {
    assert.equal(signetErrorCode(err), code, `expected ${code}, got ${String(err)}`);
    return true;
  });
  assert.equal(cachedTimestamp(), before, 'the trust directory must be left as it was');
}

describe('client workflow against a hostile trust server', () => {
  before(async () => {
    hostile = new HostileServer();
    await hostile.start();
  });
  after(() => hostile.stop());
  beforeEach(() => {
    if (trustDir) rmSync(trustDir, { recursive: true, force: true });
    trustDir = mkdtempSync(path.join(os.tmpdir(), 'signet-client-attacks-'));
  });

  test('a sound repository verifies, and v1 is trusted from targets/releases', async () => {
    serve(state({ keys: newKeys() }));
    const set = await repository().update();
    const v = verifyImage(set, GUN, { tag: 'v1' });
    assert.equal(v.digest, `sha256:${DIGEST}`);
    assert.equal(v.role, 'targets/releases');
    assert.ok(cachedTimestamp(), 'the verified state is cached');
  });

  test('rollback: after a reset the server serves an older state than the one trusted → ROLLBACK', async () => {
    const keys = newKeys();
    const old = state({ keys, version: 1 });
    serve(state({ keys, version: 5 }));
    await repository().update();
    serve(old); // e.g. restored from an old backup
    await refused('ROLLBACK', () => repository().update());
  });

  test('freeze: an expired timestamp → EXPIRED', async () => {
    serve(state({ keys: newKeys(), timestampExpires: new Date(Date.now() - 60_000).toISOString() }));
    await refused('EXPIRED', () => repository().update());
  });

  test('a root rotated without the old root keys signing it → THRESHOLD', async () => {
    const keys = newKeys();
    const first = state({ keys });
    serve(first);
    await repository().update();
    const attacker = { ...newKeys() };
    const rotated = state({ keys: attacker, rootVersion: 2, version: 2 }); // signed by its own new key only
    serve(rotated, [first.root, rotated.root]);
    await refused('THRESHOLD', () => repository().update());
  });

  test('root rotations are followed one version at a time, each signed by the previous root', async () => {
    const k1 = newKeys();
    const v1 = state({ keys: k1 });
    serve(v1);
    await repository().update();
    const k2 = { ...k1, root: certKey({ commonName: GUN }) };
    const v2 = state({ keys: k2, rootVersion: 2, version: 2, rootAlsoSignedBy: [k1.root] });
    const k3 = { ...k2, root: certKey({ commonName: GUN }) };
    const v3 = state({ keys: k3, rootVersion: 3, version: 3, rootAlsoSignedBy: [k2.root] });
    serve(v3, [v1.root, v2.root, v3.root]);
    await repository().update();
    assert.equal(cachedRootVersion(), 3);
    // Skipping a version is not possible: v3 is not signed by v1's keys.
    rmSync(trustDir, { recursive: true, force: true });
    serve(v1);
    await repository().update();
    serve(v3, [v1.root, v3.root]);
    await refused('ROOT_VERSION', () => repository().update());
  });

  test('pinned root certificates: the first root must list one of them → PINNING', async () => {
    const keys = newKeys();
    serve(state({ keys }));
    await refused('PINNING', () => repository({ certs: [tufKeyId('ecdsa', 'AAAA')] }).update());
    await repository({ certs: [keys.root.keyId] }).update();
  });

  test('a pinned CA: the root certificates must chain to it → PINNING', async () => {
    const ca = makeTestCa('signet pinning test CA');
    const leaf = ca.issueLeaf(GUN);
    const issuedRoot: TestKey = {
      keytype: 'ecdsa-x509',
      publicB64: Buffer.from(leaf.cert.pem).toString('base64'),
      keyId: tufKeyId('ecdsa-x509', Buffer.from(leaf.cert.pem).toString('base64')),
      privateKey: leaf.privateKey,
    };
    serve(state({ keys: newKeys() })); // a self-signed root
    await refused('PINNING', () => repository({ ca: ca.cert.pem }).update());
    serve(state({ keys: { ...newKeys(), root: issuedRoot } }));
    await repository({ ca: ca.cert.pem }).update();
  });

  test('trust on first use disabled and nothing pinned → PINNING', async () => {
    serve(state({ keys: newKeys() }));
    await refused('PINNING', () => repository({ disableTofu: true }).update());
  });

  test('mix-and-match: targets that are not the file the snapshot lists → HASH_MISMATCH', async () => {
    const keys = newKeys();
    const good = state({ keys, version: 2 });
    const other = state({ keys, version: 2, releasesTargets: { v1: entry('b'.repeat(64)) } });
    serve({ ...good, 'targets/releases': other['targets/releases'] });
    await refused('HASH_MISMATCH', () => repository().update());
  });

  test('a delegation signed by a key its parent does not list → THRESHOLD', async () => {
    serve(state({ keys: newKeys(), releasesSignedBy: ecdsaKey() }));
    await refused('THRESHOLD', () => repository().update());
  });

  test('a target outside its delegation’s paths is not trusted → NO_SUCH_TARGET', async () => {
    serve(state({ keys: newKeys(), releasesPaths: ['prod-'] }));
    const set = await repository().update();
    assert.throws(
      () => verifyImage(set, GUN, { tag: 'v1' }),
      (err: unknown) => signetErrorCode(err) === 'NO_SUCH_TARGET',
    );
  });

  test('a server that answers garbage → MALFORMED, one line, nothing cached', async () => {
    serve(state({ keys: newKeys() }));
    hostile.files.set('root', Buffer.from('<html>not json</html>'));
    await refused('MALFORMED', () => repository().update());
  });

  test('a server that is down → SERVER naming it', async () => {
    const down = new NotaryRepository({ gun: GUN, server: new TrustServer(GUN, { url: 'http://127.0.0.1:9' }), store: new TrustStore(trustDir) });
    await assert.rejects(
      () => down.update(),
      (err: Error) => signetErrorCode(err) === 'SERVER' && /127\.0\.0\.1:9/.test(err.message) && !err.message.includes('\n'),
    );
  });

  test('no trust data → NOT_INITIALIZED', async () => {
    hostile.files = new Map();
    await refused('NOT_INITIALIZED', () => repository().update());
  });
});
