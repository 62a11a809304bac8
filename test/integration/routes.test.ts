/**
 * Every route of the Notary v1 HTTP API (notary-protocol.md §1.1) over real HTTP: status codes,
 * exact bodies, caching headers, the error envelope, server-held keys, deletion, the
 * changefeed, version conflicts and lazy regeneration of expired timestamps and snapshots.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { createRepository, fetchServerKey, postUpdate, type TestRepository } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { ecdsaKey, rootDoc, sha256Hex, signFile, targetFile, targetsDoc, type TestKey } from '../support/tuf-kit.js';

// ---- helpers ----

interface RawResponse {
  status: number;
  headers: Record<string, string | undefined>;
  body: Buffer;
  text: string;
}

/** Collect the body as bytes, whatever its Content-Type, so byte-identity can be checked. */
function bytesParser(res: IncomingMessage, done: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
  res.on('error', (e) => done(e, Buffer.alloc(0)));
}

async function call(url: string, method: 'get' | 'head' | 'put' | 'post' | 'delete', path: string): Promise<RawResponse> {
  const agent = request(url);
  const res = await agent[method](path)
    .buffer(true)
    .parse(bytesParser as never);
  const body = Buffer.isBuffer(res.body) ? res.body : Buffer.alloc(0);
  return { status: res.status, headers: res.headers as Record<string, string | undefined>, body, text: body.toString('utf8') };
}

const NOT_FOUND_BODY = '{"errors":[{"code":"METADATA_NOT_FOUND","message":"You have requested metadata that does not exist."}]}\n';
const CURRENT_CACHE = 'public, max-age=300, s-maxage=300, must-revalidate';
const CONSISTENT_CACHE = 'public, max-age=2592000, s-maxage=2592000';
// Go's time.RFC1123 in UTC, e.g. "Mon, 02 Jan 2006 15:04:05 UTC".
const RFC1123_UTC = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} UTC$/;
const KEY_BODY = /^\{"keytype":"ed25519","keyval":\{"public":"([A-Za-z0-9+/]{43}=)","private":null\}\}$/;

function assertMetadata(res: RawResponse, expected: Buffer, cacheControl: string, what: string): void {
  assert.equal(res.status, 200, `${what}: ${res.text}`);
  assert.ok(res.body.equals(expected), `${what}: body differs from the stored bytes`);
  assert.equal(res.headers['cache-control'], cacheControl, `${what}: Cache-Control`);
  assert.match(res.headers['last-modified'] ?? '', RFC1123_UTC, `${what}: Last-Modified`);
  assert.equal(res.headers['etag'], undefined, `${what}: no ETag`);
  assert.equal(res.headers['pragma'], undefined, `${what}: no Pragma`);
}

function assertNotFound(res: RawResponse, what: string): void {
  assert.equal(res.status, 404, `${what}: ${res.text}`);
  assert.equal(res.text, NOT_FOUND_BODY, what);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8', what);
  assert.doesNotMatch(res.headers['cache-control'] ?? '', /public/, `${what}: errors are never publicly cacheable`);
  assert.equal(res.headers['etag'], undefined, what);
}

interface ErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

function errorOf(res: RawResponse): ErrorEntry {
  const parsed = JSON.parse(res.text) as { errors: ErrorEntry[] };
  assert.equal(parsed.errors.length, 1, res.text);
  return parsed.errors[0]!;
}

interface Doc {
  signed: { _type: string; version: number; expires: string; meta: Record<string, { hashes: { sha256: string; sha512: string }; length: number }> };
  signatures: { keyid: string; method: string; sig: string }[];
}

const parse = (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as Doc;
const b64sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('base64');

/** The file carries a valid signature by `key` over the canonical form of `signed`, as clients check. */
function assertSignedBy(bytes: Buffer, key: TestKey, what: string): void {
  const doc = parse(bytes);
  const entry = doc.signatures.find((s) => s.keyid === key.keyId);
  assert.ok(entry, `${what}: no signature by ${key.keyId}; signed by ${doc.signatures.map((s) => s.keyid).join(', ')}`);
  const message = canonicalJson(doc.signed);
  const sig = Buffer.from(entry.sig, 'base64');
  let ok: boolean;
  if (key.keytype === 'ed25519') {
    assert.equal(entry.method, 'eddsa', what);
    const x = Buffer.from(key.publicB64, 'base64').toString('base64url');
    ok = verify(null, message, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' }), sig);
  } else {
    assert.equal(entry.method, 'ecdsa', what);
    const pub = createPublicKey({ key: Buffer.from(key.publicB64, 'base64'), format: 'der', type: 'spki' });
    ok = verify('sha256', message, { key: pub, dsaEncoding: 'ieee-p1363' }, sig);
  }
  assert.ok(ok, `${what}: signature by ${key.keyId} does not verify`);
}

function assertReferences(timestamp: Buffer, snapshot: Buffer): void {
  const meta = parse(timestamp).signed.meta['snapshot']!;
  assert.equal(meta.hashes.sha256, b64sha256(snapshot), 'timestamp references this snapshot (sha256)');
  assert.equal(meta.hashes.sha512, createHash('sha512').update(snapshot).digest('base64'), 'sha512');
  assert.equal(meta.length, snapshot.length, 'length');
}

// ---- one server for the whole file; a repository with a delegation ----

let server: TestServer;
const GUN = 'registry.example.com/routes/app';
const TUF = `/v2/${GUN}/_trust/tuf`;
let repo: TestRepository;
let releasesKey: TestKey;
let targets2: Buffer;
let releases: Buffer;

before(async () => {
  server = await startTestServer();
  repo = await createRepository(server.url, GUN, { serverSnapshot: true });
  releasesKey = ecdsaKey();
  targets2 = signFile(targetsDoc({ version: 2, delegations: [{ name: 'targets/releases', keys: [releasesKey] }] }), [repo.targetsKey]);
  releases = signFile(targetsDoc({ targets: { v1: targetFile('release payload') } }), [releasesKey]);
  const res = await postUpdate(server.url, GUN, { targets: targets2, 'targets/releases': releases });
  assert.equal(res.status, 200, res.text);
});

after(async () => {
  await server?.close();
});

const get = (path: string) => call(server.url, 'get', path);

/** Rows written straight into the database bypass Signet: drop what it may have cached for the GUN. */
function forgetCached(gun: string): void {
  (server.context as { current?: { invalidate(gun: string): void } }).current?.invalidate(gun);
}

describe('ping and health', () => {
  test('GET /v2/ answers 200 with {}', async () => {
    const res = await get('/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.text, '{}');
  });

  test('GET /_notary_server/health answers 200 with {}', async () => {
    const res = await get('/_notary_server/health');
    assert.equal(res.status, 200);
    assert.equal(res.text, '{}');
  });
});

describe('reading metadata', () => {
  test('current root.json and targets.json are the uploaded bytes with current-metadata caching', async () => {
    assertMetadata(await get(`${TUF}/root.json`), repo.root, CURRENT_CACHE, 'root.json');
    assertMetadata(await get(`${TUF}/targets.json`), targets2, CURRENT_CACHE, 'targets.json');
  });

  test('a delegation is served by its slash-containing name targets/releases.json', async () => {
    assertMetadata(await get(`${TUF}/targets/releases.json`), releases, CURRENT_CACHE, 'targets/releases.json');
  });

  test('timestamp.json is server-signed and snapshot.json is the snapshot it references', async () => {
    const ts = await get(`${TUF}/timestamp.json`);
    assert.equal(ts.status, 200);
    assertMetadata(ts, ts.body, CURRENT_CACHE, 'timestamp.json');
    const timestamp = parse(ts.body);
    assert.equal(timestamp.signed._type, 'Timestamp');
    assert.equal(timestamp.signed.version, 2);
    assertSignedBy(ts.body, repo.timestampKey, 'timestamp.json');

    const snap = await get(`${TUF}/snapshot.json`);
    assertMetadata(snap, snap.body, CURRENT_CACHE, 'snapshot.json');
    assertReferences(ts.body, snap.body);
    const snapshot = parse(snap.body);
    assert.equal(snapshot.signed.version, 2);
    assertSignedBy(snap.body, repo.snapshotKey, 'snapshot.json');
    // The generated snapshot describes exactly the stored bytes of every role.
    assert.deepEqual(Object.keys(snapshot.signed.meta).sort(), ['root', 'targets', 'targets/releases']);
    assert.equal(snapshot.signed.meta['root']!.hashes.sha256, b64sha256(repo.root));
    assert.equal(snapshot.signed.meta['targets']!.hashes.sha256, b64sha256(targets2));
    assert.equal(snapshot.signed.meta['targets/releases']!.hashes.sha256, b64sha256(releases));
  });

  test('every role is served by <role>.<sha256>.json with consistent-metadata caching', async () => {
    const ts = (await get(`${TUF}/timestamp.json`)).body;
    const snap = (await get(`${TUF}/snapshot.json`)).body;
    const files: Record<string, Buffer> = { root: repo.root, targets: targets2, 'targets/releases': releases, snapshot: snap, timestamp: ts };
    for (const [role, bytes] of Object.entries(files)) {
      assertMetadata(await get(`${TUF}/${role}.${sha256Hex(bytes)}.json`), bytes, CONSISTENT_CACHE, `${role} by checksum`);
    }
    // an older version stays reachable by its checksum
    assertMetadata(await get(`${TUF}/targets.${sha256Hex(repo.targets)}.json`), repo.targets, CONSISTENT_CACHE, 'targets v1 by checksum');
  });

  test('checksums are accepted in upper-case hex', async () => {
    const path = `${TUF}/targets/releases.${sha256Hex(releases).toUpperCase()}.json`;
    assertMetadata(await get(path), releases, CONSISTENT_CACHE, 'upper-case checksum');
  });

  test('every stored version is served by <n>.<role>.json with consistent-metadata caching', async () => {
    assertMetadata(await get(`${TUF}/1.root.json`), repo.root, CONSISTENT_CACHE, '1.root.json');
    assertMetadata(await get(`${TUF}/1.targets.json`), repo.targets, CONSISTENT_CACHE, '1.targets.json');
    assertMetadata(await get(`${TUF}/2.targets.json`), targets2, CONSISTENT_CACHE, '2.targets.json');
    assertMetadata(await get(`${TUF}/1.targets/releases.json`), releases, CONSISTENT_CACHE, '1.targets/releases.json');
    const ts2 = (await get(`${TUF}/timestamp.json`)).body;
    assertMetadata(await get(`${TUF}/2.timestamp.json`), ts2, CONSISTENT_CACHE, '2.timestamp.json');
    const ts1 = await get(`${TUF}/1.timestamp.json`);
    assert.equal(ts1.status, 200);
    assert.equal(parse(ts1.body).signed.version, 1);
    const snap1 = await get(`${TUF}/1.snapshot.json`);
    assertReferences(ts1.body, snap1.body);
  });

  test('repeated reads (served from the in-process cache) answer exactly like the first one', async () => {
    const ts = (await get(`${TUF}/timestamp.json`)).body;
    const paths = [
      'root.json',
      'targets.json',
      'targets/releases.json',
      'snapshot.json',
      'timestamp.json',
      `targets/releases.${sha256Hex(releases)}.json`,
      `timestamp.${sha256Hex(ts)}.json`,
      '1.root.json',
      '2.targets.json',
    ];
    const headers = ['content-type', 'content-length', 'cache-control', 'last-modified', 'etag', 'pragma'];
    for (const p of paths) {
      const first = await get(`${TUF}/${p}`);
      assert.equal(first.status, 200, p);
      for (let i = 0; i < 2; i++) {
        const again = await get(`${TUF}/${p}`);
        assert.equal(again.status, 200, p);
        assert.ok(again.body.equals(first.body), `${p}: body`);
        for (const h of headers) assert.equal(again.headers[h], first.headers[h], `${p}: ${h}`);
      }
    }
  });

  test('current roles follow the chain timestamp → snapshot → role, not the highest stored version', async () => {
    const gun = 'registry.example.com/routes/chain';
    const chainRepo = await createRepository(server.url, gun, { serverSnapshot: true });
    const before = await get(`/v2/${gun}/_trust/tuf/snapshot.json`);
    // Rows nobody references (e.g. written by a foreign tool) must not become "current".
    const orphanTargets = signFile(targetsDoc({ version: 50 }), [chainRepo.targetsKey]);
    const orphanSnapshot = Buffer.from('{"signed":{"_type":"Snapshot","expires":"2099-01-01T00:00:00Z","meta":{},"version":99},"signatures":[]}');
    await server.context.database.db
      .insertInto('tuf_files')
      .values([
        { gun, role: 'targets', version: 50, sha256: sha256Hex(orphanTargets), data: orphanTargets },
        { gun, role: 'snapshot', version: 99, sha256: sha256Hex(orphanSnapshot), data: orphanSnapshot },
      ])
      .execute();
    forgetCached(gun);
    assertMetadata(await get(`/v2/${gun}/_trust/tuf/targets.json`), chainRepo.targets, CURRENT_CACHE, 'targets.json');
    assertMetadata(await get(`/v2/${gun}/_trust/tuf/snapshot.json`), before.body, CURRENT_CACHE, 'snapshot.json');
  });
});

describe('metadata that does not exist', () => {
  test('an unknown repository has no root.json, timestamp.json or snapshot.json', async () => {
    for (const role of ['root', 'targets', 'snapshot', 'timestamp']) {
      assertNotFound(await get(`/v2/registry.example.com/routes/unknown/_trust/tuf/${role}.json`), `unknown GUN ${role}.json`);
    }
  });

  test('unknown checksums, unknown versions and 0.root.json are 404', async () => {
    assertNotFound(await get(`${TUF}/root.${'0'.repeat(64)}.json`), 'unknown checksum');
    assertNotFound(await get(`${TUF}/targets.${sha256Hex(repo.root)}.json`), 'checksum of another role');
    assertNotFound(await get(`${TUF}/99.root.json`), 'unknown version');
    assertNotFound(await get(`${TUF}/0.root.json`), '0.root.json');
    assertNotFound(await get(`${TUF}/99999999999.root.json`), 'a version beyond 32 bits');
    assertNotFound(await get(`${TUF}/${'9'.repeat(30)}.root.json`), 'a version beyond 64 bits');
    assertNotFound(await get(`${TUF}/3.targets/releases.json`), 'unknown delegation version');
    assertNotFound(await get(`${TUF}/targets/other.json`), 'undelegated role');
  });

  test('sha512-length (128 hex) and sha384-length (96 hex) checksums are never found', async () => {
    const sha512 = createHash('sha512').update(targets2).digest('hex');
    assert.equal(sha512.length, 128);
    assertNotFound(await get(`${TUF}/targets.${sha512}.json`), '128-hex checksum');
    assertNotFound(await get(`${TUF}/targets.${createHash('sha384').update(targets2).digest('hex')}.json`), '96-hex checksum');
  });

  test('HEAD on metadata is not routed: 404', async () => {
    const res = await call(server.url, 'head', `${TUF}/root.json`);
    assert.equal(res.status, 404);
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.doesNotMatch(res.headers['cache-control'] ?? '', /public/);
  });

  test('root.key and targets.key are not routed: 404', async () => {
    assertNotFound(await get(`${TUF}/root.key`), 'GET root.key');
    assertNotFound(await get(`${TUF}/targets.key`), 'GET targets.key');
    assertNotFound(await call(server.url, 'post', `${TUF}/root.key`), 'POST root.key');
  });

  test('unknown paths and methods fall into the catch-all 404', async () => {
    // GET / redirects to the inspector's pages (inspector.test.ts), a 404 with SIGNET_UI=off.
    assertNotFound(await get('/v2'), 'GET /v2');
    assertNotFound(await get('/v2/nothing/here'), 'GET /v2/nothing/here');
    assertNotFound(await get(`${TUF}/`), 'GET on the update URL');
    assertNotFound(await get(`${TUF}/root.txt`), 'GET root.txt');
    assertNotFound(await get(`/v2/${GUN}/_trust/other`), 'GET _trust/other');
    assertNotFound(await call(server.url, 'put', `${TUF}/`), 'PUT on the update URL');
    assertNotFound(await call(server.url, 'put', `${TUF}/root.json`), 'PUT root.json');
    assertNotFound(await call(server.url, 'delete', `${TUF}/root.json`), 'DELETE root.json');
    assertNotFound(await call(server.url, 'post', `${TUF}/root.json`), 'POST root.json');
    assertNotFound(await call(server.url, 'post', '/v2/'), 'POST /v2/');
    assertNotFound(await call(server.url, 'post', '/v2/_trust/changefeed'), 'POST changefeed');
  });
});

describe('server-held keys', () => {
  test('timestamp.key: created before the repository exists, reused while pending, kept, rotated', async () => {
    const gun = 'registry.example.com/routes/timestamp-key';
    const path = `/v2/${gun}/_trust/tuf/timestamp.key`;

    const first = await get(path);
    assert.equal(first.status, 200, first.text);
    assert.match(first.text, KEY_BODY);
    assert.equal(Buffer.from(KEY_BODY.exec(first.text)![1]!, 'base64').length, 32);
    assert.match(first.headers['content-type'] ?? '', /^application\/json/);
    const again = await get(path);
    assert.equal(again.text, first.text, 'a pending key is handed out again');

    const keyRepo = await createRepository(server.url, gun, { serverSnapshot: true });
    assert.equal(JSON.stringify({ keytype: keyRepo.timestampKey.keytype, keyval: { public: keyRepo.timestampKey.publicB64, private: null } }), first.text);
    assert.equal((await get(path)).text, first.text, 'the key the root lists is still returned after publishing');

    const rotated = await call(server.url, 'post', path);
    assert.equal(rotated.status, 200, rotated.text);
    assert.match(rotated.text, KEY_BODY);
    assert.notEqual(rotated.text, first.text, 'POST creates a new key');
    const newKey = await fetchServerKey(server.url, gun, 'timestamp', 'post');
    assert.equal(newKey.publicB64, KEY_BODY.exec(rotated.text)![1], 'a second POST hands out the same pending key');
    assert.equal((await get(path)).text, first.text, 'GET still returns the key the root lists');

    // The old key is still listed: publishing keeps working and still signs with it.
    const t2 = signFile(targetsDoc({ version: 2 }), [keyRepo.targetsKey]);
    assert.equal((await postUpdate(server.url, gun, { targets: t2 })).status, 200);
    assertSignedBy((await get(`/v2/${gun}/_trust/tuf/timestamp.json`)).body, keyRepo.timestampKey, 'timestamp before rotation');

    // Rotate: root v2 lists the new key, signed by the root key.
    const root2 = signFile(rootDoc({ ...keyRepo.rootSpec, version: 2, timestamp: [newKey] }), [keyRepo.rootKey]);
    const res = await postUpdate(server.url, gun, { root: root2 });
    assert.equal(res.status, 200, res.text);
    let ts = (await get(`/v2/${gun}/_trust/tuf/timestamp.json`)).body;
    assert.equal(parse(ts).signed.version, 3);
    assert.deepEqual(
      parse(ts).signatures.map((s) => s.keyid),
      [newKey.keyId],
    );
    assertSignedBy(ts, newKey, 'timestamp after rotation');
    assert.equal(KEY_BODY.exec((await get(path)).text)![1], newKey.publicB64, 'GET now returns the new key');

    const t3 = signFile(targetsDoc({ version: 3 }), [keyRepo.targetsKey]);
    assert.equal((await postUpdate(server.url, gun, { targets: t3 })).status, 200);
    ts = (await get(`/v2/${gun}/_trust/tuf/timestamp.json`)).body;
    assert.equal(parse(ts).signed.version, 4);
    assertSignedBy(ts, newKey, 'timestamp of the next publish');
  });

  test('snapshot.key: a client-held snapshot is rotated to the server (notary key rotate snapshot -r)', async () => {
    const gun = 'registry.example.com/routes/snapshot-key';
    const path = `/v2/${gun}/_trust/tuf/snapshot.key`;

    const first = await get(path);
    assert.equal(first.status, 200, first.text);
    assert.match(first.text, KEY_BODY);
    assert.equal((await get(path)).text, first.text, 'a pending key is handed out again');

    const keyRepo = await createRepository(server.url, gun); // client-held snapshot key
    assert.equal((await get(path)).text, first.text, 'the root lists a key the server lacks: the pending key');
    const rotateTo = await fetchServerKey(server.url, gun, 'snapshot', 'post');
    assert.equal(rotateTo.publicB64, KEY_BODY.exec(first.text)![1], 'POST while a key is pending returns that key');

    // Root v2 lists the server's snapshot key; no snapshot uploaded: the server generates it.
    const root2 = signFile(rootDoc({ ...keyRepo.rootSpec, version: 2, snapshot: [rotateTo] }), [keyRepo.rootKey]);
    let res = await postUpdate(server.url, gun, { root: root2 });
    assert.equal(res.status, 200, res.text);
    let snap = (await get(`/v2/${gun}/_trust/tuf/snapshot.json`)).body;
    assert.equal(parse(snap).signed.version, 2);
    assertSignedBy(snap, rotateTo, 'generated snapshot');
    assert.equal(parse(snap).signed.meta['root']!.hashes.sha256, b64sha256(root2));
    assert.equal(parse(snap).signed.meta['targets']!.hashes.sha256, b64sha256(keyRepo.targets));
    assertReferences((await get(`/v2/${gun}/_trust/tuf/timestamp.json`)).body, snap);
    assert.equal((await get(path)).text, first.text, 'GET returns the key the root lists');

    const next = await call(server.url, 'post', path);
    assert.equal(next.status, 200);
    assert.match(next.text, KEY_BODY);
    assert.notEqual(next.text, first.text, 'once used, POST creates a new key');
    const nextKey = await fetchServerKey(server.url, gun, 'snapshot', 'post');

    // Still listing the old server key: publishing works, signed by it.
    res = await postUpdate(server.url, gun, { targets: signFile(targetsDoc({ version: 2 }), [keyRepo.targetsKey]) });
    assert.equal(res.status, 200, res.text);
    snap = (await get(`/v2/${gun}/_trust/tuf/snapshot.json`)).body;
    assert.equal(parse(snap).signed.version, 3);
    assertSignedBy(snap, rotateTo, 'snapshot before rotating again');

    const root3 = signFile(rootDoc({ ...keyRepo.rootSpec, version: 3, snapshot: [nextKey] }), [keyRepo.rootKey]);
    res = await postUpdate(server.url, gun, { root: root3 });
    assert.equal(res.status, 200, res.text);
    snap = (await get(`/v2/${gun}/_trust/tuf/snapshot.json`)).body;
    assert.equal(parse(snap).signed.version, 4);
    assert.deepEqual(
      parse(snap).signatures.map((s) => s.keyid),
      [nextKey.keyId],
    );
    assertSignedBy(snap, nextKey, 'snapshot after rotating again');
    assertSignedBy((await get(`/v2/${gun}/_trust/tuf/timestamp.json`)).body, keyRepo.timestampKey, 'timestamp');
  });
});

describe('updating and deleting', () => {
  test('a successful update answers 200 with an empty body', async () => {
    const gun = 'registry.example.com/routes/update';
    const updRepo = await createRepository(server.url, gun, { serverSnapshot: true });
    const res = await postUpdate(server.url, gun, { targets: signFile(targetsDoc({ version: 2 }), [updRepo.targetsKey]) });
    assert.equal(res.status, 200);
    assert.equal(res.text, '');
  });

  test('DELETE answers 200 with an empty body; the repository is gone and can be created again from version 1', async () => {
    const gun = 'registry.example.com/routes/deleted';
    const first = await createRepository(server.url, gun, { serverSnapshot: true });
    const paths = ['root.json', 'targets.json', 'snapshot.json', 'timestamp.json', '1.root.json', `root.${sha256Hex(first.root)}.json`];
    for (const path of paths) {
      // read twice: whatever Signet caches of the repository must go with it
      for (let i = 0; i < 2; i++) assert.equal((await get(`/v2/${gun}/_trust/tuf/${path}`)).status, 200, path);
    }
    const del = await call(server.url, 'delete', `/v2/${gun}/_trust/tuf/`);
    assert.equal(del.status, 200);
    assert.equal(del.text, '');
    for (const path of paths) {
      assertNotFound(await get(`/v2/${gun}/_trust/tuf/${path}`), `${path} after DELETE`);
    }
    const rows = await server.context.database.db.selectFrom('tuf_files').select('id').where('gun', '=', gun).execute();
    assert.equal(rows.length, 0);

    const second = await createRepository(server.url, gun, { serverSnapshot: true });
    assertMetadata(await get(`/v2/${gun}/_trust/tuf/1.root.json`), second.root, CONSISTENT_CACHE, '1.root.json of the new repository');
    assertMetadata(await get(`/v2/${gun}/_trust/tuf/root.json`), second.root, CURRENT_CACHE, 'root.json of the new repository');
    assert.equal(parse((await get(`/v2/${gun}/_trust/tuf/timestamp.json`)).body).signed.version, 1);
  });

  test('DELETE of an unknown repository answers 200 and records nothing', async () => {
    const gun = 'registry.example.com/routes/never-existed';
    const del = await call(server.url, 'delete', `/v2/${gun}/_trust/tuf/`);
    assert.equal(del.status, 200);
    assert.equal(del.text, '');
    assert.equal((await get(`/v2/${gun}/_trust/changefeed?change_id=0&records=10`)).text, '{"count":0,"records":null}');
  });

  test('re-posting a stored targets version is refused with 400 VERSION', async () => {
    const same = await postUpdate(server.url, GUN, { targets: targets2 });
    assert.equal(same.status, 400, same.text);
    assert.equal(same.body.errors?.[0]?.code, 'VERSION');
    assert.equal(same.body.errors?.[0]?.message, 'A newer version of metadata is already available.');

    const other = signFile(targetsDoc({ version: 2, targets: { x: targetFile('other') } }), [repo.targetsKey]);
    const older = signFile(targetsDoc({ version: 1, targets: { x: targetFile('older') } }), [repo.targetsKey]);
    for (const targets of [other, older]) {
      const res = await postUpdate(server.url, GUN, { targets });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.errors?.length, 1);
      assert.equal(res.body.errors?.[0]?.code, 'VERSION');
    }
    assertMetadata(await get(`${TUF}/targets.json`), targets2, CURRENT_CACHE, 'targets.json unchanged');
  });

  test('targets signed by the wrong key: 400 INVALID_UPDATE with an ErrBadTargets detail, under 1 KiB', async () => {
    const bad = signFile(targetsDoc({ version: 3 }), [ecdsaKey()]);
    const res = await postUpdate(server.url, GUN, { targets: bad });
    assert.equal(res.status, 400, res.text);
    assert.ok(Buffer.byteLength(res.text) <= 1024, `error body is ${Buffer.byteLength(res.text)} bytes`);
    assert.equal(res.body.errors?.length, 1);
    const error = res.body.errors![0]!;
    assert.equal(error.code, 'INVALID_UPDATE');
    assert.equal(error.message, 'Update sent by the client is invalid.');
    const detail = error.detail as { Name: string; Error: Record<string, unknown> };
    assert.deepEqual(Object.keys(detail), ['Name', 'Error']);
    assert.equal(detail.Name, 'ErrBadTargets');
    assert.deepEqual(Object.keys(detail.Error), ['Msg']);
    assert.equal(typeof detail.Error['Msg'], 'string');
    assert.ok((detail.Error['Msg'] as string).length > 0);
  });
});

describe('changefeed', () => {
  const FEED = 'registry.example.com/routes/feed';
  const feed = (query: string) => get(`/v2/${FEED}/_trust/changefeed?${query}`);
  type Record_ = { ID: string; CreatedAt: string; GUN: string; Version: number; SHA256: string; Category: string };
  const records = (res: RawResponse) => JSON.parse(res.text) as { count: number; records: Record_[] | null };

  test('an empty changefeed is {"count":0,"records":null}', async () => {
    const res = await feed('change_id=0&records=10');
    assert.equal(res.status, 200);
    assert.equal(res.text, '{"count":0,"records":null}');
  });

  test('every stored timestamp and every deletion is a record, paged by exclusive change_id', async () => {
    const feedRepo = await createRepository(server.url, FEED, { serverSnapshot: true });
    const timestamps = [(await get(`/v2/${FEED}/_trust/tuf/timestamp.json`)).body];
    for (const version of [2, 3]) {
      const res = await postUpdate(server.url, FEED, { targets: signFile(targetsDoc({ version }), [feedRepo.targetsKey]) });
      assert.equal(res.status, 200, res.text);
      timestamps.push((await get(`/v2/${FEED}/_trust/tuf/timestamp.json`)).body);
    }
    assert.equal((await call(server.url, 'delete', `/v2/${FEED}/_trust/tuf/`)).status, 200);

    const all = await feed('change_id=0&records=10');
    assert.equal(all.status, 200);
    assert.match(all.text, /^\{"count":4,"records":\[\{"ID":"/);
    const page = records(all);
    assert.equal(page.count, 4);
    const recs = page.records!;
    for (const r of recs) {
      assert.deepEqual(Object.keys(r), ['ID', 'CreatedAt', 'GUN', 'Version', 'SHA256', 'Category']);
      assert.match(r.ID, /^[1-9][0-9]*$/);
      assert.match(r.CreatedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
      assert.equal(r.GUN, FEED);
    }
    const ids = recs.map((r) => BigInt(r.ID));
    assert.deepEqual(
      [...ids].sort((a, b) => (a < b ? -1 : 1)),
      ids,
      'oldest first',
    );
    assert.deepEqual(
      recs.slice(0, 3).map((r) => [r.Version, r.SHA256, r.Category]),
      timestamps.map((t, i) => [i + 1, sha256Hex(t), 'update']),
    );
    assert.deepEqual([recs[3]!.Version, recs[3]!.SHA256, recs[3]!.Category], [0, '', 'deletion']);

    assert.deepEqual(records(await feed(`change_id=${recs[1]!.ID}&records=2`)).records, recs.slice(2, 4), 'change_id is exclusive');
    assert.deepEqual(records(await feed(`change_id=${recs[0]!.ID}&records=1`)).records, recs.slice(1, 2));
    assert.equal((await feed(`change_id=${recs[3]!.ID}&records=10`)).text, '{"count":0,"records":null}');
    assert.deepEqual(records(await feed('change_id=-1&records=-2')).records, recs.slice(2, 4), 'the last two, oldest first');
    assert.deepEqual(records(await feed(`change_id=${recs[3]!.ID}&records=-2`)).records, recs.slice(1, 3), 'backwards from a change_id');
    assert.deepEqual(records(await feed('records=2')).records, recs.slice(0, 2), 'missing change_id starts at the beginning');
    assert.deepEqual(records(await feed('change_id=&records=2')).records, recs.slice(0, 2), 'empty change_id starts at the beginning');
    assert.deepEqual(records(await feed('change_id=0&records=0')).records, recs, 'records=0 is the default page');
  });

  test('records=0 gives the default page of 100 records', async () => {
    const gun = 'registry.example.com/routes/bulk';
    await server.context.database.db
      .insertInto('changefeed')
      .values(Array.from({ length: 105 }, (_, i) => ({ gun, version: i + 1, sha256: 'ab'.repeat(32), category: 'update' as const })))
      .execute();
    const page = records(await get(`/v2/${gun}/_trust/changefeed?change_id=0&records=0`));
    assert.equal(page.count, 100);
    assert.deepEqual(
      page.records!.map((r) => r.Version),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  });

  test('the global changefeed lists the records of every repository', async () => {
    const rows = await server.context.database.db.selectFrom('changefeed').select(['id', 'gun']).orderBy('id').execute();
    const res = await get('/v2/_trust/changefeed?change_id=0&records=1000');
    assert.equal(res.status, 200);
    const page = records(res);
    assert.equal(page.count, rows.length);
    assert.deepEqual(
      page.records!.map((r) => [r.ID, r.GUN]),
      rows.map((r) => [String(r.id), r.gun]),
    );
    assert.ok(new Set(rows.map((r) => r.gun)).size > 2, 'several repositories');
    const last = records(await get('/v2/_trust/changefeed?change_id=-1&records=-2'));
    assert.deepEqual(last.records, page.records!.slice(-2), 'the last two, oldest first');
    const paged = records(await get(`/v2/_trust/changefeed?change_id=${page.records![0]!.ID}&records=3`));
    assert.deepEqual(paged.records, page.records!.slice(1, 4));
  });

  test('missing or non-integer parameters are 400 INVALID_PARAMETERS', async () => {
    const queries = [
      'change_id=0',
      'change_id=0&records=',
      'change_id=0&records=abc',
      'change_id=abc&records=10',
      'change_id=1.5&records=10',
      'change_id=0&records=99999999999',
    ];
    for (const prefix of [`/v2/${FEED}/_trust/changefeed`, '/v2/_trust/changefeed']) {
      for (const q of [...queries, '']) {
        const res = await get(q ? `${prefix}?${q}` : prefix);
        assert.equal(res.status, 400, `${prefix}?${q}: ${res.text}`);
        const error = errorOf(res);
        assert.equal(error.code, 'INVALID_PARAMETERS', q);
        assert.equal(error.message, 'The parameters provided are not valid.');
      }
    }
  });
});

describe('lazy regeneration of expired server-signed metadata', () => {
  let lazy: TestServer;
  before(async () => {
    lazy = await startTestServer({ SIGNET_TIMESTAMP_EXPIRY: '60', SIGNET_SNAPSHOT_EXPIRY: '60' });
  });
  after(async () => {
    await lazy?.close();
  });
  const lazyGet = (path: string) => call(lazy.url, 'get', path);
  const later = () => Date.now() + 120_000;

  test('an expired timestamp is re-signed on GET with version+1 by the same key, once', async () => {
    const gun = 'registry.example.com/lazy/timestamp';
    const tsRepo = await createRepository(lazy.url, gun); // client-held snapshot: only the timestamp expires
    const ts1 = (await lazyGet(`/v2/${gun}/_trust/tuf/timestamp.json`)).body;
    assert.equal(parse(ts1).signed.version, 1);
    lazy.context.now = later;
    try {
      const res = await lazyGet(`/v2/${gun}/_trust/tuf/timestamp.json`);
      assertMetadata(res, res.body, CURRENT_CACHE, 'regenerated timestamp');
      const ts2 = parse(res.body);
      assert.equal(ts2.signed.version, 2);
      assert.ok(Date.parse(ts2.signed.expires) > later(), 'the new timestamp is valid at the server clock');
      assert.deepEqual(ts2.signed.meta, parse(ts1).signed.meta, 'same snapshot');
      assertSignedBy(res.body, tsRepo.timestampKey, 'regenerated timestamp');

      const again = await lazyGet(`/v2/${gun}/_trust/tuf/timestamp.json`);
      assert.ok(again.body.equals(res.body), 'no churn: the regenerated timestamp is served again');
      const snap = await lazyGet(`/v2/${gun}/_trust/tuf/snapshot.json`);
      assert.ok(snap.body.equals(tsRepo.snapshot!), 'the client snapshot is unchanged');
      assertMetadata(await lazyGet(`/v2/${gun}/_trust/tuf/2.timestamp.json`), res.body, CONSISTENT_CACHE, 'stored as version 2');
      const feed = JSON.parse((await lazyGet(`/v2/${gun}/_trust/changefeed?change_id=-1&records=-1`)).text) as {
        records: { Version: number; SHA256: string }[];
      };
      assert.deepEqual(
        feed.records.map((r) => [r.Version, r.SHA256]),
        [[2, sha256Hex(res.body)]],
      );
    } finally {
      lazy.context.now = Date.now;
    }
  });

  test('an expired server-held snapshot is re-signed on GET with version+1, with a new timestamp, once', async () => {
    const gun = 'registry.example.com/lazy/snapshot';
    const snapRepo = await createRepository(lazy.url, gun, { serverSnapshot: true });
    const snap1 = (await lazyGet(`/v2/${gun}/_trust/tuf/snapshot.json`)).body;
    assert.equal(parse(snap1).signed.version, 1);
    lazy.context.now = later;
    try {
      const res = await lazyGet(`/v2/${gun}/_trust/tuf/snapshot.json`);
      assertMetadata(res, res.body, CURRENT_CACHE, 'regenerated snapshot');
      const snap2 = parse(res.body);
      assert.equal(snap2.signed.version, 2);
      assert.ok(Date.parse(snap2.signed.expires) > later());
      assert.deepEqual(snap2.signed.meta, parse(snap1).signed.meta, 'same roles');
      assertSignedBy(res.body, snapRepo.snapshotKey, 'regenerated snapshot');

      const ts = (await lazyGet(`/v2/${gun}/_trust/tuf/timestamp.json`)).body;
      assert.equal(parse(ts).signed.version, 2);
      assertSignedBy(ts, snapRepo.timestampKey, 'regenerated timestamp');
      assertReferences(ts, res.body);

      assert.ok((await lazyGet(`/v2/${gun}/_trust/tuf/snapshot.json`)).body.equals(res.body), 'no churn (snapshot)');
      assert.ok((await lazyGet(`/v2/${gun}/_trust/tuf/timestamp.json`)).body.equals(ts), 'no churn (timestamp)');

      // The next publish continues from the regenerated versions.
      const pub = await postUpdate(lazy.url, gun, { targets: signFile(targetsDoc({ version: 2 }), [snapRepo.targetsKey]) });
      assert.equal(pub.status, 200, pub.text);
      assert.equal(parse((await lazyGet(`/v2/${gun}/_trust/tuf/snapshot.json`)).body).signed.version, 3);
      assert.equal(parse((await lazyGet(`/v2/${gun}/_trust/tuf/timestamp.json`)).body).signed.version, 3);
    } finally {
      lazy.context.now = Date.now;
    }
  });
});
