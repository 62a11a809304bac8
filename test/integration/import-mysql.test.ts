/**
 * `signet import` from a notary deployment kept in MySQL (MariaDB): the real notary-server and
 * notary-signer (on a private Postgres cluster, the only SQL storage their Debian build is tested
 * with here) are filled with the real notary CLI; their rows are copied byte for byte into
 * notary's own MySQL schema on a private MariaDB; then `signet import --from mysql://…` fills a
 * fresh Signet database, which is checked, served, and used by the same notary client (read,
 * verify, publish with the imported server-held keys). Needs notary, notary-server,
 * notary-signer, openssl, the Postgres and the MariaDB server binaries: skipped without them
 * locally, required when CI=true.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type mysql from 'mysql2/promise';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  createMysqlDatabase,
  mariadbAvailable,
  startMariaDb,
  NOTARY_SERVER_MYSQL_SCHEMA,
  NOTARY_SIGNER_MYSQL_SCHEMA,
  type MariaDb,
} from '../support/mariadb.js';
import {
  createNotaryDatabase,
  freePort,
  makeNotaryTls,
  missingNotaryBinaries,
  notaryCli,
  NOTARY_SERVER_SCHEMA,
  NOTARY_SIGNER_SCHEMA,
  startNotaryServer,
  startNotarySigner,
  type NotaryProcess,
  type NotaryTls,
} from '../support/notary-reference.js';
import { createPostgresCluster, postgresAvailable, type PostgresCluster } from '../support/postgres.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { expectOk, pgQuery, report, signet } from '../support/import-cli.js';

const missing = [...missingNotaryBinaries(), ...(postgresAvailable() ? [] : ['postgresql']), ...(mariadbAvailable() ? [] : ['mariadb-server'])];
const skip = missing.length > 0 && !process.env['CI'] ? `not installed: ${missing.join(', ')}` : false;

const ALIAS = 'signetalias';
const PASSPHRASE = 'signer-passphrase-for-tests';
const ALPHA = 'example.com/mysql/alpha'; // server-held snapshot key (ecdsa)
const GAMMA = 'example.com/mysql/gamma'; // ed25519 timestamp keys, rotated once
const DELTA = 'example.com/mysql/delta'; // initialised, never published: a pending key

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Copy `columns` of `table` from Postgres into MySQL, ids and bytes as they are, times as UTC text. */
async function copyTable(from: string, to: mysql.Connection, table: string, columns: string[], times: string[]): Promise<number> {
  const select = columns.map((c) => (times.includes(c) ? `to_char(${c}, 'YYYY-MM-DD HH24:MI:SS.US') as ${c}` : c));
  const rows = await pgQuery<Record<string, unknown>>(from, `select ${select.join(', ')} from ${table} order by id`);
  for (const row of rows) {
    await to.query(`insert into \`${table}\` (${columns.map((c) => `\`${c}\``).join(', ')}) values (?)`, [columns.map((c) => row[c])]);
  }
  return rows.length;
}

describe("signet import from notary's MySQL databases (MariaDB)", { skip, timeout: 600_000 }, () => {
  let work: string;
  let cluster: PostgresCluster;
  let maria: MariaDb;
  let tls: NotaryTls;
  let pgServerDb: string;
  let pgSignerDb: string;
  let serverDb: string;
  let signerDsn: string;
  let signetDb: TestDatabase;
  let signetEnv: Record<string, string>;
  const running: (NotaryProcess | ServerProcess)[] = [];
  const trustDir = () => path.join(work, 'trust');
  const payload = () => path.join(work, 'payload.txt');
  const timings: string[] = [];

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-import-mysql-'));
    const t0 = Date.now();
    [cluster, maria] = await Promise.all([createPostgresCluster(), startMariaDb()]);
    timings.push(`postgres + mariadb up in ${Date.now() - t0} ms`);
    pgServerDb = await createNotaryDatabase(cluster.url, 'notaryserver', NOTARY_SERVER_SCHEMA);
    pgSignerDb = await createNotaryDatabase(cluster.url, 'notarysigner', NOTARY_SIGNER_SCHEMA);
    serverDb = await createMysqlDatabase(maria, 'notaryserver', NOTARY_SERVER_MYSQL_SCHEMA);
    await createMysqlDatabase(maria, 'notarysigner', NOTARY_SIGNER_MYSQL_SCHEMA);
    // notary's own DSN form (go-sql-driver/mysql), as in notary-signer's configuration.
    signerDsn = `signer:pass@word@tcp(127.0.0.1:${maria.port})/notarysigner?parseTime=True`;
    tls = makeNotaryTls(work);
    writeFileSync(payload(), 'payload one\n');
    signetDb = await createTestDatabase();
    signetEnv = { SIGNET_DATA_DIR: signetDb.dataDir, ...(signetDb.url ? { DATABASE_URL: signetDb.url } : {}) };
  });

  after(async () => {
    for (const p of running) await p.stop();
    await signetDb?.drop();
    await maria?.destroy();
    cluster?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
    for (const t of timings) console.log(`# ${t}`);
  });

  test("a real notary deployment, copied byte for byte into notary's MySQL schema", async () => {
    const t0 = Date.now();
    const signerPort = await freePort();
    const serverPort = await freePort();
    const startNotary = async (keyAlgorithm: 'ecdsa' | 'ed25519') => {
      const signer = await startNotarySigner({ dir: work, dbUrl: pgSignerDb, tls, port: signerPort, alias: ALIAS, passphrase: PASSPHRASE });
      running.push(signer);
      const server = await startNotaryServer({ dir: work, dbUrl: pgServerDb, tls, port: serverPort, signerPort, keyAlgorithm });
      running.push(server);
      return {
        cli: (args: string[]) => notaryCli({ server: server.url, trustDir: trustDir(), ca: tls.ca }, args),
        async stop() {
          await server.stop();
          await signer.stop();
        },
      };
    };
    let notary = await startNotary('ecdsa');
    await expectOk(notary.cli(['init', ALPHA, '-p']));
    await expectOk(notary.cli(['add', ALPHA, 'v1', payload(), '-p']));
    await expectOk(notary.cli(['key', 'rotate', ALPHA, 'snapshot', '-r']));
    await expectOk(notary.cli(['add', ALPHA, 'v2', payload(), '-p']));
    await expectOk(notary.cli(['init', DELTA]));
    await notary.stop();
    notary = await startNotary('ed25519');
    await expectOk(notary.cli(['init', GAMMA, '-p']));
    await expectOk(notary.cli(['add', GAMMA, 'v1', payload(), '-p']));
    await expectOk(notary.cli(['key', 'rotate', GAMMA, 'timestamp', '-r']));
    await expectOk(notary.cli(['add', GAMMA, 'v2', payload(), '-p']));
    await notary.stop();
    timings.push(`notary deployment filled in ${Date.now() - t0} ms`);

    const t1 = Date.now();
    const server = await maria.connect('notaryserver');
    const signer = await maria.connect('notarysigner');
    try {
      const files = await copyTable(
        pgServerDb,
        server,
        'tuf_files',
        ['id', 'created_at', 'updated_at', 'deleted_at', 'gun', 'role', 'version', 'data', 'sha256'],
        ['created_at', 'updated_at', 'deleted_at'],
      );
      const changes = await copyTable(pgServerDb, server, 'changefeed', ['id', 'created_at', 'gun', 'version', 'sha256', 'category'], ['created_at']);
      const keys = await copyTable(
        pgSignerDb,
        signer,
        'private_keys',
        [
          'id',
          'created_at',
          'updated_at',
          'deleted_at',
          'key_id',
          'encryption_alg',
          'keywrap_alg',
          'algorithm',
          'passphrase_alias',
          'public',
          'private',
          'gun',
          'role',
          'last_used',
        ],
        ['created_at', 'updated_at', 'deleted_at', 'last_used'],
      );
      assert.ok(files > 10 && changes > 0);
      assert.equal(keys, 5);
      // Bytes exact.
      const pgFiles = await pgQuery<{ id: number; data: Buffer }>(pgServerDb, 'select id, data from tuf_files order by id');
      const [myFiles] = (await server.query('select id, data, sha256 from tuf_files order by id')) as unknown as [
        { id: number; data: Buffer; sha256: string }[],
      ];
      assert.deepEqual(
        myFiles.map((f) => `${f.id} ${sha(f.data)}`),
        pgFiles.map((f) => `${f.id} ${sha(f.data)}`),
      );
      assert.ok(myFiles.every((f) => f.sha256 === sha(f.data)));
      const pgKeys = await pgQuery<{ id: number; private: Buffer; public: Buffer }>(pgSignerDb, 'select id, private, public from private_keys order by id');
      const [myKeys] = (await signer.query('select id, private, public from private_keys order by id')) as unknown as [
        { id: number; private: Buffer; public: Buffer }[],
      ];
      assert.deepEqual(
        myKeys.map((k) => `${k.id} ${sha(k.private)} ${sha(k.public)}`),
        pgKeys.map((k) => `${k.id} ${sha(k.private)} ${sha(k.public)}`),
      );
    } finally {
      await server.end();
      await signer.end();
    }
    timings.push(`rows copied into MariaDB in ${Date.now() - t1} ms`);
  });

  const sourceArgs = () => ['import', '--from', serverDb, '--signer', signerDsn];

  test('--dry-run from MySQL reports what would be imported and writes nothing', async () => {
    const r = await signet([...sourceArgs(), '--dry-run', '--json'], { ...signetEnv, [`NOTARY_SIGNER_${ALIAS.toUpperCase()}`]: PASSPHRASE });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = report(r);
    assert.equal(rep.dryRun, true);
    assert.equal(rep.files.imported, rep.files.source);
    assert.equal(rep.keys.imported, 5);
    assert.match(r.stderr, /checked 3\/3 repositories/);
  });

  test("import from MySQL: every file, the changefeed and the five keys, with notary's times; exit 0", async () => {
    const c = await maria.connect('notaryserver');
    let files: { gun: string; role: string; version: number; sha256: string; created_at: string }[];
    let changes: { id: number; created_at: string }[];
    try {
      [files] = (await c.query(`select gun, role, version, sha256, date_format(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') as created_at
        from tuf_files order by gun, id`)) as unknown as [typeof files];
      [changes] = (await c.query(`select id, date_format(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') as created_at from changefeed order by id`)) as unknown as [
        typeof changes,
      ];
    } finally {
      await c.end();
    }
    const r = await signet([...sourceArgs(), '--passphrase', `${ALIAS}=${PASSPHRASE}`, '--json'], signetEnv);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = report(r);
    assert.deepEqual(rep.repositories, { total: 3, imported: 3, upToDate: 0, conflicted: 0 });
    assert.deepEqual(rep.files, { source: files.length, imported: files.length, existing: 0, refused: 0, unverified: 0 });
    assert.deepEqual(rep.refused, []);
    assert.deepEqual(rep.conflicts, []);
    assert.equal(rep.changefeed.source, changes.length);
    assert.equal(rep.changefeed.imported, changes.length);
    assert.equal(rep.changefeed.idsPreserved, true);
    assert.equal(rep.keys.imported, 5);
    assert.equal(rep.keys.failed, 0);
    assert.deepEqual(rep.withoutTimestampKey, []);
    timings.push(`import from MySQL: ${rep.files.imported} files, ${rep.changefeed.imported} changes, ${rep.keys.imported} keys in ${rep.elapsedMs} ms`);

    if (signetDb.url) {
      const iso = (s: string) => new Date(s).toISOString(); // microseconds → milliseconds, as pg returns them
      const copied = await pgQuery<{ gun: string; role: string; version: number; sha256: string; created_at: Date }>(
        signetDb.url,
        'select gun, role, version, sha256, created_at from tuf_files order by gun, id',
      );
      assert.deepEqual(
        copied.map((f) => `${f.gun} ${f.role} ${f.version} ${f.sha256} ${f.created_at.toISOString()}`),
        files.map((f) => `${f.gun} ${f.role} ${f.version} ${f.sha256.trim()} ${iso(f.created_at)}`),
      );
      const feed = await pgQuery<{ id: string; created_at: Date }>(signetDb.url, 'select id, created_at from changefeed order by id');
      assert.deepEqual(
        feed.map((f) => `${f.id} ${f.created_at.toISOString()}`),
        changes.map((f) => `${f.id} ${iso(f.created_at)}`),
      );
      const keys = await pgQuery<{ gun: string; last_used: Date | null }>(signetDb.url, 'select gun, last_used from server_keys');
      assert.equal(
        keys
          .filter((k) => k.last_used === null)
          .map((k) => k.gun)
          .join(),
        DELTA,
      );
      const audit = await pgQuery<{ gun: string; detail: { source: string; files: number; keys: number } }>(
        signetDb.url,
        `select gun, detail from audit_log where action = 'import' order by gun`,
      );
      assert.deepEqual(
        audit.map((a) => a.gun),
        [ALPHA, DELTA, GAMMA],
      );
      assert.deepEqual(audit.find((a) => a.gun === DELTA)!.detail, { source: `127.0.0.1:${maria.port}/notaryserver`, files: 0, keys: 1 });
    }
  });

  test('import from MySQL again: nothing new, no passphrase needed; exit 0', async () => {
    const r = await signet([...sourceArgs(), '--json'], signetEnv);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = report(r);
    assert.equal(rep.files.imported, 0);
    assert.equal(rep.files.existing, rep.files.source);
    assert.equal(rep.changefeed.imported, 0);
    assert.equal(rep.changefeed.existing, rep.changefeed.source);
    assert.equal(rep.keys.existing, 5);
    assert.deepEqual(rep.repositories, { total: 3, imported: 0, upToDate: 3, conflicted: 0 });
  });

  test('signet check passes on the store imported from MySQL', async () => {
    const r = await signet(['check'], signetEnv);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /2 repositories, \d+ files checked: 0 errors, 0 warnings/);
  });

  test('the notary client lists, verifies and publishes against Signet', async () => {
    const server = await spawnServer({ ...signetEnv, SIGNET_LOG_LEVEL: 'warn' });
    running.push(server);
    try {
      const cli = (args: string[], dir = trustDir()) => notaryCli({ server: server.url, trustDir: dir }, args);
      assert.match(await expectOk(cli(['list', ALPHA])), /^v2 .* targets$/m);
      assert.match(await expectOk(cli(['list', GAMMA])), /^v2 .* targets$/m);
      const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn('sh', ['-c', `notary -s ${server.url} -d ${trustDir()} verify ${ALPHA} v1 < ${payload()}`]);
        let o = '';
        child.stderr.on('data', (c: Buffer) => (o += c.toString()));
        child.on('exit', (c) => resolve({ code: c, out: o }));
      });
      assert.equal(code, 0, out);
      await expectOk(cli(['add', ALPHA, 'v9', payload(), '-p']));
      await expectOk(cli(['add', GAMMA, 'v9', payload(), '-p']));
      await expectOk(cli(['add', DELTA, 'v9', payload(), '-p']));
      const fresh = path.join(work, 'fresh');
      for (const gun of [ALPHA, GAMMA, DELTA]) assert.match(await expectOk(cli(['list', gun], fresh)), /^v9 /m, gun);
    } finally {
      await server.stop();
    }
    const r = await signet(['check'], signetEnv);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('--gun, and MySQL usage errors exit 2 with the reason', async () => {
    const db = await createTestDatabase();
    try {
      const env = { SIGNET_DATA_DIR: db.dataDir, ...(db.url ? { DATABASE_URL: db.url } : {}) };
      const one = await signet([...sourceArgs(), '--gun', GAMMA, '--passphrase', `${ALIAS}=${PASSPHRASE}`, '--json'], env);
      assert.equal(one.code, 0, one.stdout + one.stderr);
      const rep = report(one);
      assert.equal(rep.repositories.total, 1);
      assert.equal(rep.keys.imported, 2);
      // Names are compared byte for byte, not with MySQL's case-insensitive collation.
      const upper = report(await signet([...sourceArgs(), '--gun', GAMMA.toUpperCase(), '--json', '--dry-run'], env));
      assert.equal(upper.repositories.total, 0);
    } finally {
      await db.drop();
    }
    const notNotary = await signet(['import', '--from', maria.url('notarysigner')], signetEnv);
    assert.equal(notNotary.code, 2);
    assert.match(notNotary.stderr, /no tuf_files table/);
    const down = await signet(['import', '--from', `mysql://notary@127.0.0.1:${await freePort()}/notaryserver`], signetEnv);
    assert.equal(down.code, 2);
    assert.match(down.stderr, /--from: .*ECONNREFUSED/);
    const bad = await signet(['import', '--from', 'notary@tcp(127.0.0.1:3306)'], signetEnv);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from: .*MySQL/);
  });
});
