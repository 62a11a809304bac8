/**
 * The signing call of a server-held signer on two Signet processes sharing one Postgres
 * database: 200 calls for one repository at once, half at each process, are all published, one
 * after the other: every version of targets/ci and targets/releases from 2 to 201 stored once,
 * none lost or repeated, and the last one holds all 200 tags.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { tufKeyId } from '../../src/tuf/core/keys.js';
import { createRepository, postUpdate } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { signFile, targetsDoc, type TestKey } from '../support/tuf-kit.js';

// Two processes can share only a real Postgres server; in CI its absence is a failure.
const skip = process.env['TEST_DATABASE_URL'] || process.env['CI'] ? false : 'needs TEST_DATABASE_URL (real Postgres)';
const GUN = 'localhost:5000/busy/app';
const CALLS = 200;

describe('signing calls on two server processes, one database', { skip, timeout: 300_000 }, () => {
  let db: TestDatabase;
  let servers: ServerProcess[] = [];
  let sql: pg.Client;

  before(async () => {
    db = await createTestDatabase();
    assert.ok(db.url, 'TEST_DATABASE_URL must name a Postgres server');
    const env = { DATABASE_URL: db.url, SIGNET_DATA_DIR: db.dataDir, SIGNET_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex'), SIGNET_LOG_LEVEL: 'warn' };
    servers = [await spawnServer(env), await spawnServer(env)];
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  after(async () => {
    await sql?.end();
    for (const s of servers) await s.stop();
    await db?.drop();
  });

  test(`${CALLS} concurrent sign calls for one repository: all published, no version lost or repeated`, async () => {
    const repo = await createRepository(servers[0]!.url, GUN, { serverSnapshot: true });
    const created = await request(servers[1]!.url)
      .post(`/api/v1/repositories/${GUN}/signers`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ name: 'ci' }));
    assert.equal(created.status, 201, created.text);
    const signer = created.body as { keyId: string; publicKey: string };
    const key: TestKey = { keytype: 'ecdsa-x509', publicB64: signer.publicKey, keyId: tufKeyId('ecdsa-x509', signer.publicKey), privateKey: null };
    assert.equal(key.keyId, signer.keyId);
    const targets = signFile(
      targetsDoc({
        version: 2,
        delegations: [
          { name: 'targets/ci', keys: [key] },
          { name: 'targets/releases', keys: [key] },
        ],
      }),
      [repo.targetsKey],
    );
    assert.equal((await postUpdate(servers[0]!.url, GUN, { targets })).status, 200);

    const digest = (i: number) => `sha256:${createHash('sha256').update(`image ${i}`).digest('hex')}`;
    const answers = await Promise.all(
      Array.from({ length: CALLS }, (_, i) =>
        request(servers[i % 2]!.url)
          .post(`/api/v1/repositories/${GUN}/signers/ci/sign`)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify({ tag: `build-${i}`, digest: digest(i), size: 1000 + i })),
      ),
    );
    for (const a of answers) assert.equal(a.status, 200, a.text);

    const versionsIn = (role: string) =>
      answers.map((a) => (a.body as { published: { role: string; version: number }[] }).published.find((p) => p.role === role)!.version).sort((x, y) => x - y);
    const expected = Array.from({ length: CALLS }, (_, i) => i + 1);
    // targets/ci is new: versions 1…200; every answer names a different one.
    assert.deepEqual(versionsIn('targets/ci'), expected);
    assert.deepEqual(versionsIn('targets/releases'), expected);
    for (const role of ['targets/ci', 'targets/releases']) {
      const stored = await sql.query<{ version: number }>(`select version from tuf_files where gun = $1 and role = $2 order by version`, [GUN, role]);
      assert.deepEqual(
        stored.rows.map((r) => r.version),
        expected,
        `${role}: each version stored once`,
      );
    }
    const timestamps = await sql.query<{ n: string; distinct: string }>(
      `select count(*) as n, count(distinct version) as distinct from tuf_files where gun = $1 and role = 'timestamp'`,
      [GUN],
    );
    assert.equal(timestamps.rows[0]!.n, timestamps.rows[0]!.distinct);

    // The current delegation holds every tag, each with its own digest and size.
    const current = await request(servers[1]!.url).get(`/v2/${GUN}/_trust/tuf/targets/releases.json`);
    assert.equal(current.status, 200);
    const tags = (JSON.parse(current.text) as { signed: { version: number; targets: Record<string, { length: number; hashes: { sha256: string } }> } }).signed;
    assert.equal(tags.version, CALLS);
    assert.equal(Object.keys(tags.targets).length, CALLS);
    for (let i = 0; i < CALLS; i++) {
      const t = tags.targets[`build-${i}`]!;
      assert.equal(t.length, 1000 + i);
      assert.equal(Buffer.from(t.hashes.sha256, 'base64').toString('hex'), digest(i).slice(7));
    }
    const audited = await sql.query<{ n: string }>(
      `select count(*) as n from audit_log where gun = $1 and action = 'signer-sign' and detail->>'result' = 'signed'`,
      [GUN],
    );
    assert.equal(Number(audited.rows[0]!.n), CALLS);
  });
});
