/**
 * Key ceremonies on two Signet processes sharing one Postgres database: the last signatures of
 * a staged update arriving at the same moment, one at each process, publish it exactly once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { createRepository } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { certKey, rootDoc, signatureFor, type TestKey } from '../support/tuf-kit.js';

// Two processes can share only a real Postgres server; in CI its absence is a failure.
const skip = process.env['TEST_DATABASE_URL'] || process.env['CI'] ? false : 'needs TEST_DATABASE_URL (real Postgres)';

describe('staged updates on two server processes, one database', { skip, timeout: 180_000 }, () => {
  let db: TestDatabase;
  let servers: ServerProcess[] = [];
  let sql: pg.Client;

  before(async () => {
    db = await createTestDatabase();
    assert.ok(db.url, 'TEST_DATABASE_URL must name a Postgres server');
    const env = { DATABASE_URL: db.url, SIGNET_DATA_DIR: db.dataDir, SIGNET_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex'), SIGNET_LOG_LEVEL: 'warn' };
    servers = [await spawnServer(env)];
    servers.push(await spawnServer(env));
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  after(async () => {
    await sql?.end();
    for (const s of servers) await s.stop();
    await db?.drop();
  });

  const sign = (url: string, gun: string, id: string, signed: object, key: TestKey) =>
    request(url)
      .post(`/api/v1/repositories/${gun}/staged/${id}/signatures`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ signatures: [signatureFor(key, canonicalJson(signed))] }));

  async function stagedRotation(gun: string, signers: (repo: Awaited<ReturnType<typeof createRepository>>, holders: TestKey[]) => TestKey[]) {
    const repo = await createRepository(servers[0]!.url, gun, { serverSnapshot: true });
    const holders = [1, 2, 3].map(() => certKey({ commonName: gun }));
    const signed = rootDoc({ ...repo.rootSpec, version: 2, root: holders, rootThreshold: 2 });
    const message = canonicalJson(signed);
    const res = await request(servers[1]!.url)
      .post(`/api/v1/repositories/${gun}/staged`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ role: 'root', file: { signed, signatures: signers(repo, holders).map((k) => signatureFor(k, message)) } }));
    assert.equal(res.status, 201, res.text);
    return { id: (res.body as { id: string }).id, signed, holders };
  }

  async function storedOnce(gun: string, id: string) {
    const roots = await sql.query<{ version: number }>(`select version from tuf_files where gun = $1 and role = 'root' order by version`, [gun]);
    assert.deepEqual(
      roots.rows.map((r) => r.version),
      [1, 2],
      'root version 2 stored exactly once',
    );
    const audit = await sql.query<{ n: string }>(`select count(*) as n from audit_log where gun = $1 and action = 'staged-publish'`, [gun]);
    assert.equal(Number(audit.rows[0]!.n), 1, 'one publish audited');
    const state = await sql.query<{ state: string }>(`select state from staged_updates where id = $1`, [id]);
    assert.equal(state.rows[0]!.state, 'published');
  }

  test('the last two signatures needed, at once on two processes: both accepted, published once', async () => {
    for (let round = 0; round < 5; round++) {
      const gun = `registry.example.com/race/both-${round}`;
      const { id, signed, holders } = await stagedRotation(gun, (repo) => [repo.rootKey]);
      const [b, c] = await Promise.all([sign(servers[0]!.url, gun, id, signed, holders[1]!), sign(servers[1]!.url, gun, id, signed, holders[2]!)]);
      assert.equal(b.status, 200, b.text);
      assert.equal(c.status, 200, c.text);
      assert.equal([b, c].filter((r) => r.body.published).length, 1, 'exactly one request published it');
      await storedOnce(gun, id);
    }
  });

  test('one signature needed, two arriving at once: one publishes, the other is told it is published', async () => {
    for (let round = 0; round < 5; round++) {
      const gun = `registry.example.com/race/one-${round}`;
      const { id, signed, holders } = await stagedRotation(gun, (repo, h) => [repo.rootKey, h[0]!]);
      const results = await Promise.all([sign(servers[0]!.url, gun, id, signed, holders[1]!), sign(servers[1]!.url, gun, id, signed, holders[2]!)]);
      const won = results.filter((r) => r.status === 200);
      const lost = results.filter((r) => r.status !== 200);
      assert.equal(won.length, 1, results.map((r) => r.text).join('\n'));
      assert.ok(won[0]!.body.published);
      assert.equal(lost[0]!.status, 409, lost[0]!.text);
      assert.equal((lost[0]!.body as { errors: { code: string; detail: string }[] }).errors[0]!.code, 'STAGED_CLOSED');
      assert.match((lost[0]!.body as { errors: { detail: string }[] }).errors[0]!.detail, /published/);
      await storedOnce(gun, id);
    }
  });
});
