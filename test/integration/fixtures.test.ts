/**
 * The recorded notary 0.7 session (fixtures/notary-0.7-session) replayed against Signet over
 * HTTP. The real client's update bodies, with their recorded Content-Type, are parsed end to
 * end; since Signet does not hold the reference server's timestamp (and snapshot) keys, every
 * update must be refused cleanly with a 400 and leave nothing stored.
 *
 * With the repository state the reference server had at each step seeded into the database,
 * each recorded update passes every check (root certificates and rotation, ECDSA signatures
 * over canonical JSON, snapshot hash cross-checks, delegations) and is refused only at the step
 * needing a server key: proof that the exact bytes of real client bodies come through.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { notarySessionDir } from '../support/paths.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { sha256Hex, signFile, snapshotDoc } from '../support/tuf-kit.js';

const GUN = 'docker.io/fixtures/app';
const UPDATE_URL = `/v2/${GUN}/_trust/tuf/`;
type Step = '005' | '011' | '018' | '026' | '032';

interface Recorded {
  body: Buffer;
  contentType: string;
  userAgent: string;
  /** Part bodies by filename, cut out of the body independently of Signet's parser. */
  parts: Map<string, Buffer>;
}

function splitParts(body: Buffer, boundary: string): Map<string, Buffer> {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts = new Map<string, Buffer>();
  let at = body.indexOf(delimiter);
  while (at >= 0 && !body.subarray(at + delimiter.length, at + delimiter.length + 2).equals(Buffer.from('--'))) {
    const headersEnd = body.indexOf('\r\n\r\n', at);
    const headers = body.subarray(at, headersEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headersEnd);
    parts.set(/filename="([^"]*)"/.exec(headers)![1]!, body.subarray(headersEnd + 4, next));
    at = next + 2;
  }
  return parts;
}

function recorded(step: Step): Recorded {
  const dir = path.join(notarySessionDir, 'requests');
  const headers = JSON.parse(readFileSync(path.join(dir, `${step}-post-headers.json`), 'utf8')) as Record<string, string>;
  const body = readFileSync(path.join(dir, `${step}-post-body.multipart`));
  const contentType = headers['content-type']!;
  return { body, contentType, userAgent: headers['user-agent']!, parts: splitParts(body, /boundary=(.+)$/.exec(contentType)![1]!) };
}

const metadata = (name: string) => readFileSync(path.join(notarySessionDir, 'metadata', name));

let server: TestServer;

/** Rows written straight into the database bypass Signet: drop what it may have cached for the GUN. */
function forgetCached(gun: string): void {
  (server.context as { current?: { invalidate(gun: string): void } }).current?.invalidate(gun);
}

before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.close();
});

async function post(step: Step) {
  const r = recorded(step);
  assert.equal(String(r.body.length), JSON.parse(readFileSync(path.join(notarySessionDir, 'requests', `${step}-post-headers.json`), 'utf8'))['content-length']);
  return request(server.url).post(UPDATE_URL).set('Content-Type', r.contentType).set('User-Agent', r.userAgent).send(r.body);
}

async function counts() {
  const db = server.context.database.db;
  const n = async (table: 'tuf_files' | 'changefeed' | 'server_keys') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return { tuf_files: await n('tuf_files'), changefeed: await n('changefeed'), server_keys: await n('server_keys') };
}

interface Refusal {
  code: string;
  message: string;
  detail?: { Name: string; Error: { Msg: string; Missing?: string } };
}

/** POST a recorded body; it must be a clean 400 INVALID_UPDATE that stores nothing. */
async function refused(step: Step): Promise<NonNullable<Refusal['detail']>> {
  const before = await counts();
  const res = await post(step);
  assert.equal(res.status, 400, `${step}: ${res.status} ${res.text}`);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
  assert.ok(Buffer.byteLength(res.text) <= 1024);
  const body = JSON.parse(res.text) as { errors: Refusal[] };
  assert.equal(body.errors.length, 1);
  assert.equal(body.errors[0]!.code, 'INVALID_UPDATE', `${step}: ${res.text}`);
  assert.equal(body.errors[0]!.message, 'Update sent by the client is invalid.');
  assert.deepEqual(await counts(), before, `${step} stored something`);
  return body.errors[0]!.detail!;
}

const NO_TIMESTAMP_KEY = { Name: 'ErrBadRoot', Error: { Msg: 'no  timestamp keys exist on the server' } };
const NO_ROOT = { Name: 'ErrValidation', Error: { Msg: 'no pre-existing root and no root provided in update.' } };
const NO_SNAPSHOT_KEY = {
  Name: 'ErrBadHierarchy',
  Error: { Missing: 'snapshot', Msg: 'no snapshot was included in update and server does not hold current snapshot key for repository' },
};

describe('the recorded session against an empty Signet', () => {
  test('the recorded bodies are what the session says: parts named by role, in Go multipart form', () => {
    assert.deepEqual([...recorded('005').parts.keys()].sort(), ['root', 'snapshot', 'targets']);
    assert.deepEqual([...recorded('032').parts.keys()], ['targets/releases']);
    assert.ok(recorded('005').parts.get('root')!.equals(metadata('1.root.json')));
    assert.ok(recorded('032').parts.get('targets/releases')!.equals(metadata('targets_releases.json')));
  });

  test('GET /v2/ and timestamp.key answer like the reference server (001, 002)', async () => {
    const ping = await request(server.url).get('/v2/');
    assert.equal(ping.status, 200);
    assert.equal(ping.text, '{}');
    const before = await counts();
    const key = await request(server.url).get(`${UPDATE_URL}timestamp.key`);
    assert.equal(key.status, 200);
    const reference = metadata('timestamp.key.json').toString('utf8');
    // Same shape and length as the reference server's answer; a different key, of course.
    assert.equal(key.text.length, reference.length);
    assert.equal(key.text.replace(/"public":"[^"]+"/, '"public":"…"'), reference.replace(/"public":"[^"]+"/, '"public":"…"'));
    assert.notEqual(key.text, reference);
    assert.deepEqual(await counts(), { ...before, server_keys: before.server_keys + 1 });
  });

  test('root.json of the not yet initialised repository is the reference 404 body (004)', async () => {
    const res = await request(server.url).get(`${UPDATE_URL}root.json`);
    assert.equal(res.status, 404);
    assert.equal(res.text, metadata('error-404.json').toString('utf8'));
  });

  test('005 (notary init: root, targets, snapshot) is refused: Signet lacks the reference timestamp key', async () => {
    assert.deepEqual(await refused('005'), NO_TIMESTAMP_KEY);
  });

  test('011, 026 and 032 (updates without a root) are refused: the repository does not exist', async () => {
    for (const step of ['011', '026', '032'] as const) {
      assert.deepEqual(await refused(step), NO_ROOT, step);
    }
  });

  test('018 (a root v2 alone) is refused: nothing to build a first snapshot from', async () => {
    const detail = await refused('018');
    // Signet reports the missing snapshot key first; notary would report its builder's
    // "targets must be loaded first" as ErrValidation. Either way the update is refused.
    assert.ok(['ErrBadHierarchy', 'ErrValidation'].includes(detail.Name), JSON.stringify(detail));
  });

  test('nothing at all was stored for the fixture repository', async () => {
    const db = server.context.database.db;
    assert.deepEqual(await db.selectFrom('tuf_files').select('id').where('gun', '=', GUN).execute(), []);
    assert.deepEqual(await db.selectFrom('changefeed').select('id').where('gun', '=', GUN).execute(), []);
    const feed = await request(server.url).get(`/v2/${GUN}/_trust/changefeed?change_id=0&records=10`);
    assert.equal(feed.text, '{"count":0,"records":null}');
    assert.equal((await request(server.url).get(`${UPDATE_URL}root.json`)).status, 404);
  });
});

describe('the recorded session against the state the reference server had at each step', () => {
  /**
   * Replace the fixture repository's rows by `files`, plus a snapshot listing them (unless one
   * is given) and a timestamp referencing that snapshot. Stored files are not re-verified, so
   * unsigned stand-ins suffice for what the reference server generated.
   */
  async function seed(files: Record<string, { version: number; bytes: Buffer }>): Promise<void> {
    const db = server.context.database.db;
    await db.deleteFrom('tuf_files').where('gun', '=', GUN).execute();
    const rows = { ...files };
    if (!rows['snapshot']) {
      const listed = Object.fromEntries(Object.entries(files).map(([role, f]) => [role, f.bytes]));
      rows['snapshot'] = { version: 90, bytes: signFile(snapshotDoc({ version: 90, files: listed }), []) };
    }
    const snapshot = rows['snapshot']!.bytes;
    rows['timestamp'] = { version: 90, bytes: signFile(snapshotDoc({ version: 90, files: { snapshot } }), []) };
    await db
      .insertInto('tuf_files')
      .values(Object.entries(rows).map(([role, f]) => ({ gun: GUN, role, version: f.version, sha256: sha256Hex(f.bytes), data: f.bytes })))
      .execute();
    forgetCached(GUN);
    const root = await request(server.url).get(`${UPDATE_URL}root.json`);
    assert.equal(root.status, 200, 'the seeded repository is readable');
    assert.equal(root.text, files['root']!.bytes.toString('utf8'));
  }

  after(async () => {
    await server.context.database.db.deleteFrom('tuf_files').where('gun', '=', GUN).execute();
    forgetCached(GUN);
  });

  test('011 (targets and a client-signed snapshot) passes every check but the timestamp key', async () => {
    const init = recorded('005').parts;
    await seed({
      root: { version: 1, bytes: init.get('root')! },
      targets: { version: 2, bytes: init.get('targets')! },
      snapshot: { version: 2, bytes: init.get('snapshot')! },
    });
    assert.deepEqual(await refused('011'), NO_TIMESTAMP_KEY);
  });

  test('018 (root v2 handing the snapshot key to the server) passes the rotation checks', async () => {
    const init = recorded('005').parts;
    const add = recorded('011').parts;
    await seed({
      root: { version: 1, bytes: init.get('root')! },
      targets: { version: 3, bytes: add.get('targets')! },
      snapshot: { version: 3, bytes: add.get('snapshot')! },
    });
    // Refused only because the snapshot key it lists is the reference server's.
    assert.deepEqual(await refused('018'), NO_SNAPSHOT_KEY);
  });

  test('026 (targets with the targets/releases delegation) passes the targets checks', async () => {
    await seed({
      root: { version: 2, bytes: metadata('root.json') },
      targets: { version: 3, bytes: recorded('011').parts.get('targets')! },
    });
    assert.deepEqual(await refused('026'), NO_SNAPSHOT_KEY);
  });

  test('032 (the first targets/releases file) passes the delegation checks', async () => {
    await seed({
      root: { version: 2, bytes: metadata('root.json') },
      targets: { version: 4, bytes: recorded('026').parts.get('targets')! },
    });
    assert.deepEqual(await refused('032'), NO_SNAPSHOT_KEY);
  });

  test('a recorded body sent to another repository fails on the root certificate (the GUN is checked)', async () => {
    const r = recorded('005');
    const res = await request(server.url).post('/v2/docker.io/fixtures/other/_trust/tuf/').set('Content-Type', r.contentType).send(r.body);
    assert.equal(res.status, 400, res.text);
    const detail = (JSON.parse(res.text) as { errors: Refusal[] }).errors[0]!.detail!;
    assert.equal(detail.Name, 'ErrBadRoot');
    assert.match(detail.Error.Msg, /unable to retrieve valid leaf certificates/);
  });
});
