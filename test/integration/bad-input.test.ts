/**
 * Bad input over HTTP: every malformed, oversized or invalid request gets the right 4xx in
 * notary's error envelope (never a 5xx), and NOTHING of it is stored: no metadata row, no
 * changefeed record, no server key, and the repository's current files stay byte-identical.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { createRepository, postUpdate, type TestRepository } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { MESSAGES } from '../support/hostile.js';
import { certKey, ecdsaKey, multipartBody, rootDoc, signFile, snapshotDoc, targetFile, targetsDoc } from '../support/tuf-kit.js';

const LIMITS = { SIGNET_MAX_BODY_BYTES: '4096', SIGNET_MAX_PART_BYTES: '3072', SIGNET_MAX_PARTS: '4' };

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

interface ErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

let server: TestServer;
const GUN = 'registry.example.com/bad/app';
let repo: TestRepository;

before(async () => {
  server = await startTestServer(LIMITS);
  repo = await createRepository(server.url, GUN); // client-held snapshot key
});

after(async () => {
  await server?.close();
});

// ---- requests ----

/** A request sent exactly as given: the path is not normalised, the body may come in chunks. */
function raw(method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer; chunks?: Buffer[] } = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path, headers: opts.headers ?? {} }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body) req.end(opts.body);
    else if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end();
  });
}

/** POST a body with the given Content-Type (or none) to the update URL of `gun`. */
async function post(body: Buffer | string, contentType: string | undefined, gun = GUN): Promise<RawResponse> {
  let req = request(server.url).post(`/v2/${gun}/_trust/tuf/`);
  if (contentType !== undefined) req = req.set('Content-Type', contentType);
  const res = await req.send(Buffer.from(body));
  return { status: res.status, headers: res.headers as http.IncomingHttpHeaders, text: res.text };
}

/** POST `parts` as the Go client writes them (filename = role). */
function postParts(parts: Record<string, Buffer | string>, gun = GUN): Promise<RawResponse> {
  const { body, contentType } = multipartBody(parts);
  return post(body, contentType, gun);
}

/** A multipart body from raw part header lines and bodies. */
function multipart(parts: { headers: string[]; body: Buffer | string }[], boundary = 'b0undary') {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${p.headers.map((h) => `${h}\r\n`).join('')}\r\n`), Buffer.from(p.body), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

// ---- assertions ----

function assertRefused(res: RawResponse, status: number, code: string, detail?: unknown): ErrorEntry {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
  assert.ok(Buffer.byteLength(res.text) <= 1024, `error body of ${Buffer.byteLength(res.text)} bytes: clients read 1 KiB`);
  const parsed = JSON.parse(res.text) as { errors: ErrorEntry[] };
  assert.equal(parsed.errors.length, 1, res.text);
  const error = parsed.errors[0]!;
  assert.equal(error.code, code, res.text);
  if (MESSAGES[code]) assert.equal(error.message, MESSAGES[code]);
  if (detail !== undefined) assert.deepEqual(error.detail, detail);
  return error;
}

/** The validation detail notary clients decode: `{"Name":…,"Error":{"Msg":…}}`. */
function assertValidationDetail(error: ErrorEntry, name: string, msg?: RegExp | string): void {
  const detail = error.detail as { Name: string; Error: { Msg: string } };
  assert.equal(detail?.Name, name, JSON.stringify(error));
  assert.equal(typeof detail.Error.Msg, 'string');
  if (typeof msg === 'string') assert.equal(detail.Error.Msg, msg);
  else if (msg) assert.match(detail.Error.Msg, msg);
}

async function count(table: 'tuf_files' | 'changefeed' | 'server_keys'): Promise<number> {
  const db = server.context.database.db;
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function currentBytes(role: string): Promise<string> {
  const res = await request(server.url)
    .get(`/v2/${GUN}/_trust/tuf/${role}.json`)
    .buffer(true)
    .parse((r, done) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => done(null, Buffer.concat(chunks)));
    });
  assert.equal(res.status, 200);
  return (res.body as Buffer).toString('base64');
}

async function storedState() {
  return {
    tuf_files: await count('tuf_files'),
    changefeed: await count('changefeed'),
    server_keys: await count('server_keys'),
    root: await currentBytes('root'),
    targets: await currentBytes('targets'),
    snapshot: await currentBytes('snapshot'),
    timestamp: await currentBytes('timestamp'),
  };
}

/** Run `attempt`, which must leave no trace in the database. */
async function nothingStored<T>(attempt: () => Promise<T>): Promise<T> {
  const before = await storedState();
  const result = await attempt();
  assert.deepEqual(await storedState(), before, 'the refused request changed stored state');
  return result;
}

// Valid building blocks: a targets v2 the repository would accept.
const validTargets2 = () => signFile(targetsDoc({ version: 2, targets: { v2: targetFile('two') } }), [repo.targetsKey]);

/** Re-serialise a valid file with `edit` applied to its parsed JSON. */
function edited(bytes: Buffer, edit: (doc: { signed: Record<string, unknown>; signatures: unknown }) => void): Buffer {
  const doc = JSON.parse(bytes.toString('utf8')) as { signed: Record<string, unknown>; signatures: unknown };
  edit(doc);
  return Buffer.from(JSON.stringify(doc));
}

// ---- tests ----

describe('bodies that are not a multipart upload', () => {
  test('a JSON body is 400 MALFORMED_UPLOAD', async () => {
    const res = await nothingStored(() => post(JSON.stringify({ targets: validTargets2().toString() }), 'application/json'));
    assertRefused(res, 400, 'MALFORMED_UPLOAD');
  });

  test('a body without Content-Type is 400 MALFORMED_UPLOAD', async () => {
    const { body } = multipartBody({ targets: validTargets2() });
    assertRefused(await nothingStored(() => post(body, undefined)), 400, 'MALFORMED_UPLOAD');
  });

  test('multipart/form-data without a boundary is 400 MALFORMED_UPLOAD', async () => {
    const { body } = multipartBody({ targets: validTargets2() });
    for (const contentType of ['multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; boundary="a"b']) {
      assertRefused(await nothingStored(() => post(body, contentType)), 400, 'MALFORMED_UPLOAD');
    }
  });

  test('a multipart body whose delimiters do not match the boundary is 400 MALFORMED_UPLOAD', async () => {
    const { body } = multipartBody({ targets: validTargets2() }, 'one');
    assertRefused(await nothingStored(() => post(body, 'multipart/form-data; boundary=other')), 400, 'MALFORMED_UPLOAD');
  });

  test('a truncated multipart body is 400 MALFORMED_UPLOAD', async () => {
    const { body, contentType } = multipartBody({ targets: validTargets2() });
    const withoutClosing = body.subarray(0, body.lastIndexOf('\r\n--'));
    for (const cut of [body.subarray(0, Math.floor(body.length / 2)), withoutClosing, body.subarray(0, 40)]) {
      assertRefused(await nothingStored(() => post(cut, contentType)), 400, 'MALFORMED_UPLOAD');
    }
  });
});

describe('parts that do not name a valid role', () => {
  test('a part without a filename is 400 NO_FILENAME', async () => {
    const bodies = [
      multipart([{ headers: ['Content-Disposition: form-data; name="files"'], body: validTargets2() }]),
      multipart([{ headers: ['Content-Disposition: form-data; name="files"; filename=""'], body: validTargets2() }]),
      multipart([{ headers: ['Content-Disposition: form-data; name="files"; filename=".json"'], body: validTargets2() }]),
      multipart([{ headers: ['Content-Type: application/octet-stream'], body: validTargets2() }]),
      // a valid part first does not make the unnamed one acceptable
      multipart([
        { headers: ['Content-Disposition: form-data; name="files"; filename="targets"'], body: validTargets2() },
        { headers: ['Content-Disposition: form-data; name="files"'], body: validTargets2() },
      ]),
    ];
    for (const { body, contentType } of bodies) {
      assertRefused(await nothingStored(() => post(body, contentType)), 400, 'NO_FILENAME');
    }
  });

  test('an unknown role is 400 INVALID_ROLE with the role as detail', async () => {
    for (const role of ['foo', 'targets/UPPER', 'targets/../x', 'targets/', 'targets//x', 'targets/a b', 'Root', 'delegation/x']) {
      const { body, contentType } = multipart([{ headers: [`Content-Disposition: form-data; name="files"; filename="${role}"`], body: validTargets2() }]);
      const res = await nothingStored(() => post(body, contentType));
      assertRefused(res, 400, 'INVALID_ROLE', role);
    }
  });

  test('an invalid role next to valid parts refuses the whole update', async () => {
    const res = await nothingStored(() => postParts({ targets: validTargets2(), foo: validTargets2() }));
    assertRefused(res, 400, 'INVALID_ROLE', 'foo');
  });
});

describe('parts that are not readable metadata', () => {
  test('a part that is not JSON is 400 MALFORMED_JSON', async () => {
    for (const body of ['not json', '', '{"signed":', '\u00ff\u00fe']) {
      assertRefused(await nothingStored(() => postParts({ targets: body })), 400, 'MALFORMED_JSON');
    }
  });

  test('wrongly typed fields are 400 MALFORMED_JSON', async () => {
    const cases: Record<string, Buffer> = {
      'signed.version is a string': signFile({ ...targetsDoc({}), version: '2' }, [repo.targetsKey]),
      'signed.version is fractional': edited(validTargets2(), (d) => {
        d.signed['version'] = 2.5;
      }),
      'signatures is an object': edited(validTargets2(), (d) => {
        d.signatures = {};
      }),
      'expires is not RFC 3339': signFile({ ...targetsDoc({ version: 2 }), expires: '2030-01-01' }, [repo.targetsKey]),
      'expires is not a time at all': signFile({ ...targetsDoc({ version: 2 }), expires: 'tomorrow' }, [repo.targetsKey]),
      'a sig is not base64': edited(validTargets2(), (d) => {
        (d.signatures as { sig: string }[])[0]!.sig = 'not base64!';
      }),
      'signed is missing': Buffer.from('{"signatures":[]}'),
      'the file is an array': Buffer.from('[]'),
    };
    for (const [what, bytes] of Object.entries(cases)) {
      const res = await nothingStored(() => postParts({ targets: bytes }));
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assertRefused(res, 400, 'MALFORMED_JSON');
    }
  });

  test('a malformed part after a valid one refuses the whole update', async () => {
    const res = await nothingStored(() => postParts({ targets: validTargets2(), 'targets/releases': 'nope' }));
    assertRefused(res, 400, 'MALFORMED_JSON');
  });
});

describe('metadata that fails validation', () => {
  test('a bad signature is 400 INVALID_UPDATE (ErrBadTargets)', async () => {
    const tampered = edited(validTargets2(), (d) => {
      const sig = (d.signatures as { sig: string }[])[0]!;
      const bytes = Buffer.from(sig.sig, 'base64');
      bytes[5]! ^= 0xff;
      sig.sig = bytes.toString('base64');
    });
    const error = assertRefused(await nothingStored(() => postParts({ targets: tampered })), 400, 'INVALID_UPDATE');
    assertValidationDetail(error, 'ErrBadTargets');
  });

  test('a signed file whose content was changed after signing is 400 INVALID_UPDATE', async () => {
    const changed = edited(validTargets2(), (d) => {
      (d.signed['targets'] as Record<string, unknown>)['evil'] = targetFile('evil');
    });
    const error = assertRefused(await nothingStored(() => postParts({ targets: changed })), 400, 'INVALID_UPDATE');
    assertValidationDetail(error, 'ErrBadTargets');
  });

  test('an update without a snapshot for a client-held snapshot key is 400 INVALID_UPDATE (ErrBadHierarchy)', async () => {
    const error = assertRefused(await nothingStored(() => postParts({ targets: validTargets2() })), 400, 'INVALID_UPDATE');
    assert.deepEqual(error.detail, {
      Name: 'ErrBadHierarchy',
      Error: { Missing: 'snapshot', Msg: 'no snapshot was included in update and server does not hold current snapshot key for repository' },
    });
  });

  test('valid targets with a bad snapshot: nothing of the update is stored', async () => {
    const targets = validTargets2();
    const wrongHashes = signFile(snapshotDoc({ version: 2, files: { root: repo.root, targets: repo.targets } }), [repo.snapshotKey]);
    const wrongKey = signFile(snapshotDoc({ version: 2, files: { root: repo.root, targets } }), [ecdsaKey()]);
    for (const snapshot of [wrongHashes, wrongKey]) {
      const error = assertRefused(await nothingStored(() => postParts({ targets, snapshot })), 400, 'INVALID_UPDATE');
      assertValidationDetail(error, 'ErrBadSnapshot');
    }
  });

  test('valid targets with a root that fails: nothing of the update is stored', async () => {
    const targets = validTargets2();
    // Root v2 signed only by a new root key: the current root's key did not approve it.
    const newRootKey = certKey({ commonName: GUN });
    const root2 = signFile(rootDoc({ ...repo.rootSpec, version: 2, root: [newRootKey] }), [newRootKey]);
    const snapshot = signFile(snapshotDoc({ version: 2, files: { root: root2, targets } }), [repo.snapshotKey]);
    const error = assertRefused(await nothingStored(() => postParts({ root: root2, targets, snapshot })), 400, 'INVALID_UPDATE');
    assertValidationDetail(error, 'ErrBadRoot', /failed to validate data with current trusted certificates/);
  });

  test('a valid update with one stale version is 400 VERSION and stores nothing', async () => {
    const targets = validTargets2();
    const staleSnapshot = signFile(snapshotDoc({ version: 1, files: { root: repo.root, targets } }), [repo.snapshotKey]);
    assertRefused(await nothingStored(() => postParts({ targets, snapshot: staleSnapshot })), 400, 'VERSION');
  });

  test('a version too large to store (2^31) is refused with 400 INVALID_UPDATE, never a 5xx', async () => {
    // Versions are stored as 32-bit integers: one beyond them must be refused as invalid metadata.
    const bigTargets = signFile(targetsDoc({ version: 2 ** 31 }), [repo.targetsKey]);
    const withBigTargets = signFile(snapshotDoc({ version: 10, files: { root: repo.root, targets: bigTargets } }), [repo.snapshotKey]);
    let error = assertRefused(await nothingStored(() => postParts({ targets: bigTargets, snapshot: withBigTargets })), 400, 'INVALID_UPDATE');
    assertValidationDetail(error, 'ErrBadTargets');

    const targets = validTargets2();
    const bigSnapshot = signFile(snapshotDoc({ version: 2 ** 31, files: { root: repo.root, targets } }), [repo.snapshotKey]);
    error = assertRefused(await nothingStored(() => postParts({ targets, snapshot: bigSnapshot })), 400, 'INVALID_UPDATE');
    assertValidationDetail(error, 'ErrBadSnapshot');
  });

  test('the same update, made valid, is accepted (the cases above fail for the reason tested)', async () => {
    const targets = validTargets2();
    const snapshot = signFile(snapshotDoc({ version: 2, files: { root: repo.root, targets } }), [repo.snapshotKey]);
    const before = await count('tuf_files');
    const res = await postUpdate(server.url, GUN, { targets, snapshot });
    assert.equal(res.status, 200, res.text);
    assert.equal(await count('tuf_files'), before + 3);
    repo.targets = targets;
    repo.snapshot = snapshot;
  });
});

describe('repository names (GUNs) the server refuses', () => {
  const badGuns: Record<string, string> = {
    'a ".." segment': 'registry.example.com/../bad/app',
    'an encoded ".." segment': 'registry.example.com/%2E%2E/app',
    'a "." segment': 'registry.example.com/./app',
    'a control character': 'registry.example.com/bad%01/app',
    'a space': 'registry.example.com/bad%20app',
    'more than 255 bytes': `registry.example.com/${'a'.repeat(240)}`,
    'an empty segment': 'registry.example.com//app',
    'an empty first segment': '/registry.example.com/app',
    'a trailing slash': 'registry.example.com/app/',
  };

  test('the long name really is over 255 bytes', () => {
    assert.ok(Buffer.byteLength(badGuns['more than 255 bytes']!) > 255);
  });

  for (const [what, gun] of Object.entries(badGuns)) {
    test(`a GUN with ${what} is 400 INVALID_GUN on every route`, async () => {
      const { body, contentType } = multipartBody({ targets: validTargets2() });
      const attempts: [string, string, Buffer?][] = [
        ['POST', `/v2/${gun}/_trust/tuf/`, body],
        ['GET', `/v2/${gun}/_trust/tuf/root.json`],
        ['GET', `/v2/${gun}/_trust/tuf/1.root.json`],
        ['GET', `/v2/${gun}/_trust/tuf/timestamp.key`],
        ['POST', `/v2/${gun}/_trust/tuf/snapshot.key`],
        ['DELETE', `/v2/${gun}/_trust/tuf/`],
        ['GET', `/v2/${gun}/_trust/changefeed?change_id=0&records=10`],
      ];
      for (const [method, path, reqBody] of attempts) {
        const res = await nothingStored(() =>
          raw(method, path, reqBody ? { body: reqBody, headers: { 'Content-Type': contentType, 'Content-Length': String(reqBody.length) } } : {}),
        );
        assert.equal(res.status, 400, `${method} ${path}: ${res.status} ${res.text}`);
        assertRefused(res, 400, 'INVALID_GUN');
      }
    });
  }

  test('an update to a GUN containing "*" is told why: 400 INVALID_GUN', async () => {
    const { body, contentType } = multipartBody({ targets: validTargets2() });
    const res = await nothingStored(() => post(body, contentType, 'registry.example.com/*/app'));
    assertRefused(res, 400, 'INVALID_GUN', 'the name contains "*"');
  });
});

describe('size limits', () => {
  test('a body over SIGNET_MAX_BODY_BYTES is 413 TOO_LARGE', async () => {
    const { body, contentType } = multipartBody({ targets: Buffer.alloc(8192, 0x20) });
    assert.ok(body.length > 8192);
    const error = assertRefused(await nothingStored(() => post(body, contentType)), 413, 'TOO_LARGE');
    assert.ok(error.message.length > 0);
  });

  test('a chunked body (no Content-Length) over SIGNET_MAX_BODY_BYTES is 413 TOO_LARGE', async () => {
    const { body, contentType } = multipartBody({ targets: Buffer.alloc(8192, 0x20) });
    const chunks = [body.subarray(0, 3000), body.subarray(3000, 6000), body.subarray(6000)];
    const res = await nothingStored(() =>
      raw('POST', `/v2/${GUN}/_trust/tuf/`, { chunks, headers: { 'Content-Type': contentType, 'Transfer-Encoding': 'chunked' } }),
    );
    assertRefused(res, 413, 'TOO_LARGE');
  });

  test('a part over SIGNET_MAX_PART_BYTES is 413 TOO_LARGE', async () => {
    const { body, contentType } = multipartBody({ targets: Buffer.alloc(3500, 0x20) });
    assert.ok(body.length <= 4096, 'the body itself is within the body limit');
    assertRefused(await nothingStored(() => post(body, contentType)), 413, 'TOO_LARGE');
  });

  test('more parts than SIGNET_MAX_PARTS is 400 MALFORMED_UPLOAD', async () => {
    const five = multipart(
      ['a', 'b', 'c', 'd', 'e'].map((n) => ({ headers: [`Content-Disposition: form-data; name="files"; filename="targets/${n}"`], body: '{}' })),
    );
    assertRefused(await nothingStored(() => post(five.body, five.contentType)), 400, 'MALFORMED_UPLOAD');
    // exactly the limit passes the parser (and then fails on the content)
    const four = multipart(
      ['a', 'b', 'c', 'd'].map((n) => ({ headers: [`Content-Disposition: form-data; name="files"; filename="targets/${n}"`], body: '{}' })),
    );
    assertRefused(await nothingStored(() => post(four.body, four.contentType)), 400, 'MALFORMED_JSON');
  });

  test('the server still serves normally after refusing oversized bodies', async () => {
    const res = await request(server.url).get(`/v2/${GUN}/_trust/tuf/targets.json`);
    assert.equal(res.status, 200);
  });
});
