/**
 * `signet import` from a real notary deployment: notary-server and notary-signer (remote
 * signer, gRPC over mutual TLS) on a private Postgres cluster, filled with the real notary CLI;
 * then imported into a fresh Signet database, imported again (nothing new), checked, served,
 * and used by the same notary client and a fresh one, including publishing with the imported
 * server-held keys. Needs notary, notary-server, notary-signer, openssl and the Postgres server
 * binaries: skipped without them locally, required when CI=true.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
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

const missing = [...missingNotaryBinaries(), ...(postgresAvailable() ? [] : ['postgresql'])];
const skip = missing.length > 0 && !process.env['CI'] ? `not installed: ${missing.join(', ')}` : false;

const ALIAS = 'signetalias';
const PASSPHRASE = 'signer-passphrase-for-tests';
const ALPHA = 'example.com/import/alpha'; // server-held snapshot key (ecdsa)
const BETA = 'example.com/import/beta'; // a delegation, targets/releases
const GAMMA = 'example.com/import/gamma'; // ed25519 timestamp keys, rotated once
const DELTA = 'example.com/import/delta'; // initialised, never published: a pending key

describe('signet import from a real notary-server + notary-signer', { skip, timeout: 600_000 }, () => {
  let work: string;
  let cluster: PostgresCluster;
  let tls: NotaryTls;
  let serverDb: string;
  let signerDb: string;
  let signerPort: number;
  let serverPort: number;
  let signetDb: TestDatabase;
  let signetEnv: Record<string, string>;
  const running: (NotaryProcess | ServerProcess)[] = [];
  const trustDir = () => path.join(work, 'trust');
  const payload = () => path.join(work, 'payload.txt');

  async function startNotary(keyAlgorithm: 'ecdsa' | 'ed25519') {
    const signer = await startNotarySigner({ dir: work, dbUrl: signerDb, tls, port: signerPort, alias: ALIAS, passphrase: PASSPHRASE });
    running.push(signer);
    const server = await startNotaryServer({ dir: work, dbUrl: serverDb, tls, port: serverPort, signerPort, keyAlgorithm });
    running.push(server);
    return {
      url: server.url,
      cli: (args: string[], dir = trustDir()) => notaryCli({ server: server.url, trustDir: dir, ca: tls.ca }, args),
      async stop() {
        await server.stop();
        await signer.stop();
      },
    };
  }

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-import-'));
    cluster = await createPostgresCluster();
    serverDb = await createNotaryDatabase(cluster.url, 'notaryserver', NOTARY_SERVER_SCHEMA);
    signerDb = await createNotaryDatabase(cluster.url, 'notarysigner', NOTARY_SIGNER_SCHEMA);
    tls = makeNotaryTls(work);
    signerPort = await freePort();
    serverPort = await freePort();
    writeFileSync(payload(), 'payload one\n');
    signetDb = await createTestDatabase();
    signetEnv = { SIGNET_DATA_DIR: signetDb.dataDir, ...(signetDb.url ? { DATABASE_URL: signetDb.url } : {}) };
  });

  after(async () => {
    for (const p of running) await p.stop();
    await signetDb?.drop();
    cluster?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the notary deployment is filled with the real CLI', async () => {
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path.join(work, 'releases.key')]);
    execFileSync('openssl', [
      'req',
      '-new',
      '-x509',
      '-key',
      path.join(work, 'releases.key'),
      '-out',
      path.join(work, 'releases.crt'),
      '-days',
      '365',
      '-subj',
      '/CN=releases',
    ]);

    let notary = await startNotary('ecdsa');
    await expectOk(notary.cli(['init', ALPHA, '-p']));
    await expectOk(notary.cli(['add', ALPHA, 'v1', payload(), '-p']));
    await expectOk(notary.cli(['key', 'rotate', ALPHA, 'snapshot', '-r']));
    await expectOk(notary.cli(['add', ALPHA, 'v2', payload(), '-p']));

    await expectOk(notary.cli(['init', BETA, '-p']));
    await expectOk(notary.cli(['add', BETA, 'v1', payload(), '-p']));
    await expectOk(notary.cli(['delegation', 'add', BETA, 'targets/releases', path.join(work, 'releases.crt'), '--all-paths', '-p']));
    await expectOk(notary.cli(['key', 'import', path.join(work, 'releases.key'), '--role', 'targets/releases']));
    await expectOk(notary.cli(['add', BETA, 'v3', payload(), '--roles', 'targets/releases', '-p']));

    // Fetches a timestamp key from the server (the signer stores it unused), publishes nothing.
    await expectOk(notary.cli(['init', DELTA]));
    await notary.stop();

    // Same deployment, now creating ed25519 keys.
    notary = await startNotary('ed25519');
    await expectOk(notary.cli(['init', GAMMA, '-p']));
    await expectOk(notary.cli(['add', GAMMA, 'v1', payload(), '-p']));
    await expectOk(notary.cli(['key', 'rotate', GAMMA, 'timestamp', '-r']));
    await expectOk(notary.cli(['add', GAMMA, 'v2', payload(), '-p']));
    assert.match(await expectOk(notary.cli(['list', GAMMA])), /^v2 /m);
    await notary.stop();

    const keys = await pgQuery<{ gun: string; role: string; algorithm: string; last_used: Date | null }>(
      signerDb,
      'select gun, role, algorithm, last_used from private_keys order by id',
    );
    assert.deepEqual(
      keys.map((k) => `${k.gun} ${k.role} ${k.algorithm} ${k.last_used ? 'used' : 'pending'}`).sort(),
      [
        `${ALPHA} snapshot ecdsa used`,
        `${ALPHA} timestamp ecdsa used`,
        `${BETA} timestamp ecdsa used`,
        `${DELTA} timestamp ecdsa pending`,
        `${GAMMA} timestamp ed25519 used`,
        `${GAMMA} timestamp ed25519 used`,
      ].sort(),
    );
    // Keep the client's state as notary left it, for a diverging publish later.
    cpSync(trustDir(), path.join(work, 'trust-at-migration'), { recursive: true });
  });

  const sourceArgs = () => ['import', '--from', serverDb, '--signer', signerDb];

  test('--dry-run reports what would be imported and writes nothing', async () => {
    const r = await signet([...sourceArgs(), '--dry-run', '--json'], { ...signetEnv, [`NOTARY_SIGNER_${ALIAS.toUpperCase()}`]: PASSPHRASE });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = report(r);
    const files = (await pgQuery<{ n: number }>(serverDb, 'select count(*)::int as n from tuf_files'))[0]!.n;
    assert.equal(rep.dryRun, true);
    assert.equal(rep.files.source, files);
    assert.equal(rep.files.imported, files);
    assert.equal(rep.keys.imported, 6);
    assert.match(r.stderr, /checked 4\/4 repositories/);
  });

  test('import: every file, the changefeed and the six keys; exit 0', async () => {
    const files = await pgQuery<{ gun: string; role: string; version: number; sha256: string; created_at: Date }>(
      serverDb,
      `select gun, role, version, sha256, created_at at time zone 'UTC' as created_at from tuf_files order by gun, id`,
    );
    const changes = await pgQuery<{ id: number }>(serverDb, 'select id from changefeed order by id');
    const r = await signet([...sourceArgs(), '--passphrase', `${ALIAS}=${PASSPHRASE}`, '--json'], signetEnv);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = report(r);
    assert.equal(rep.dryRun, false);
    assert.deepEqual(rep.repositories, { total: 4, imported: 4, upToDate: 0, conflicted: 0 });
    assert.deepEqual(rep.files, { source: files.length, imported: files.length, existing: 0, refused: 0, unverified: 0 });
    assert.deepEqual(rep.refused, []);
    assert.deepEqual(rep.conflicts, []);
    assert.equal(rep.changefeed.imported, changes.length);
    assert.equal(rep.changefeed.idsPreserved, true);
    assert.equal(rep.keys.imported, 6);
    assert.equal(rep.keys.failed, 0);
    assert.deepEqual(rep.withoutTimestampKey, []);
    assert.match(r.stderr, /^imported 4\/4 repositories, \d+ files$/m);
    assert.ok(rep.filesPerSecond > 0);
    console.log(`# import: ${rep.files.imported} files in ${rep.elapsedMs} ms (${rep.filesPerSecond} files/s)`);

    if (signetDb.url) {
      // The exact rows in notary's order per repository, with notary's times, and the change IDs.
      const copied = await pgQuery<{ gun: string; role: string; version: number; sha256: string; created_at: Date }>(
        signetDb.url,
        'select gun, role, version, sha256, created_at from tuf_files order by gun, id',
      );
      assert.deepEqual(
        copied.map((c) => `${c.gun} ${c.role} ${c.version} ${c.sha256} ${c.created_at.toISOString()}`),
        files.map((c) => `${c.gun} ${c.role} ${c.version} ${c.sha256.trim()} ${c.created_at.toISOString()}`),
      );
      const ids = await pgQuery<{ id: string }>(signetDb.url, 'select id from changefeed order by id');
      assert.deepEqual(
        ids.map((i) => Number(i.id)),
        changes.map((c) => c.id),
      );
      const keys = await pgQuery<{ gun: string; last_used: Date | null }>(signetDb.url, 'select gun, last_used from server_keys');
      assert.equal(
        keys
          .filter((k) => k.last_used === null)
          .map((k) => k.gun)
          .join(),
        DELTA,
      );
      // One audit record per repository, naming the source without credentials.
      const audit = await pgQuery<{ gun: string; subject: string; detail: { source: string; files: number; keys: number } }>(
        signetDb.url,
        `select gun, subject, detail from audit_log where action = 'import' order by gun`,
      );
      assert.deepEqual(
        audit.map((a) => a.gun),
        [ALPHA, BETA, DELTA, GAMMA],
      );
      assert.deepEqual(audit.find((a) => a.gun === DELTA)!.detail, { source: `${new URL(serverDb).host}/notaryserver`, files: 0, keys: 1 });
    }
  });

  test('import again: nothing new, no passphrase needed; exit 0', async () => {
    const r = await signet([...sourceArgs(), '--json'], signetEnv);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = report(r);
    assert.equal(rep.files.imported, 0);
    assert.equal(rep.files.existing, rep.files.source);
    assert.equal(rep.changefeed.imported, 0);
    assert.equal(rep.changefeed.existing, rep.changefeed.source);
    assert.equal(rep.keys.imported, 0);
    assert.equal(rep.keys.existing, 6);
    assert.deepEqual(rep.repositories, { total: 4, imported: 0, upToDate: 4, conflicted: 0 });
    // The human summary too.
    const human = await signet(sourceArgs(), signetEnv);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /files: \d+ in notary: 0 imported, \d+ already present, 0 refused/);
  });

  test('signet check passes on the imported store', async () => {
    const r = await signet(['check'], signetEnv);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // delta has a key but no metadata yet.
    assert.match(r.stdout, /3 repositories, \d+ files checked: 0 errors, 0 warnings/);
  });

  test('the same notary client, and a fresh one, use Signet: read, verify, publish', async () => {
    const server = await spawnServer({ ...signetEnv, SIGNET_LOG_LEVEL: 'warn' });
    running.push(server);
    try {
      const cli = (args: string[], dir = trustDir()) => notaryCli({ server: server.url, trustDir: dir }, args);
      assert.match(await expectOk(cli(['list', ALPHA])), /^v2 .* targets$/m);
      const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn('sh', ['-c', `notary -s ${server.url} -d ${trustDir()} verify ${ALPHA} v1 < ${payload()}`]);
        let o = '';
        child.stderr.on('data', (c: Buffer) => (o += c.toString()));
        child.on('exit', (c) => resolve({ code: c, out: o }));
      });
      assert.equal(code, 0, out);
      assert.match(await expectOk(cli(['list', BETA])), /^v3 .* targets\/releases$/m);

      // Publishing: Signet signs snapshot (alpha) and timestamps with the imported keys.
      await expectOk(cli(['add', ALPHA, 'v9', payload(), '-p']));
      await expectOk(cli(['add', BETA, 'v9', payload(), '--roles', 'targets/releases', '-p']));
      await expectOk(cli(['add', GAMMA, 'v9', payload(), '-p']));
      // The key notary-signer had handed out but never used is the one Signet now holds.
      await expectOk(cli(['add', DELTA, 'v9', payload(), '-p']));

      const fresh = path.join(work, 'fresh');
      for (const gun of [ALPHA, BETA, GAMMA, DELTA]) {
        assert.match(await expectOk(cli(['list', gun], fresh)), /^v9 /m, gun);
      }
      assert.match(await expectOk(cli(['list', ALPHA], fresh)), /^v1 /m);
      assert.match(await expectOk(cli(['list', BETA], fresh)), /^v3 .* targets\/releases$/m);
    } finally {
      await server.stop();
    }
    const r = await signet(['check'], signetEnv);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('tampered rows are refused with reasons, a diverged repository is a conflict left untouched; exit 1', async () => {
    // Someone kept publishing on the old notary after the migration: gamma diverges.
    const notary = await startNotary('ed25519');
    await expectOk(notary.cli(['add', GAMMA, 'v10', payload(), '-p'], path.join(work, 'trust-at-migration')));
    await notary.stop();

    // And three alpha rows are damaged in notary's database.
    const [targets] = await pgQuery<{ data: Buffer }>(
      serverDb,
      `select data from tuf_files where gun = $1 and role = 'targets' order by version desc limit 1`,
      [ALPHA],
    );
    const [snapshot] = await pgQuery<{ data: Buffer }>(
      serverDb,
      `select data from tuf_files where gun = $1 and role = 'snapshot' order by version desc limit 1`,
      [ALPHA],
    );
    const forged = JSON.parse(targets!.data.toString()) as { signed: { version: number; targets: Record<string, unknown> } };
    forged.signed.version = 50;
    forged.signed.targets['evil'] = { hashes: { sha256: Buffer.alloc(32).toString('base64') }, length: 1 };
    const forgedBytes = Buffer.from(JSON.stringify(forged));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    await pgQuery(
      serverDb,
      `insert into tuf_files (created_at, gun, role, version, data, sha256) values
      (now(), $1, 'targets', 50, $2, $3), (now(), $1, 'snapshot', 60, $4, $5), (now(), $1, 'targets', 51, $6, $7)`,
      [ALPHA, forgedBytes, sha(forgedBytes), snapshot!.data, sha(snapshot!.data), targets!.data, 'f'.repeat(64)],
    );

    const before = signetDb.url ? await pgQuery<{ n: number }>(signetDb.url, 'select count(*)::int as n from tuf_files where gun = $1', [GAMMA]) : null;
    const r = await signet([...sourceArgs(), '--json'], signetEnv);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const rep = report(r);
    const reasons = Object.fromEntries(rep.refused.map((p) => [`${p.gun} ${p.role} v${p.version}`, p.reason]));
    assert.deepEqual(Object.keys(reasons).sort(), [`${ALPHA} snapshot v60`, `${ALPHA} targets v50`, `${ALPHA} targets v51`]);
    assert.match(reasons[`${ALPHA} targets v50`]!, /fewer than 1 valid signatures from the targets keys of root v\d/);
    assert.match(reasons[`${ALPHA} snapshot v60`]!, /its bytes say version \d+, the row says 60/);
    assert.match(reasons[`${ALPHA} targets v51`]!, /stored sha256 ffffffffffff… does not match its bytes/);
    assert.equal(rep.repositories.conflicted, 1);
    assert.ok(rep.conflicts.length > 0);
    assert.ok(
      rep.conflicts.every((c) => c.gun === GAMMA),
      JSON.stringify(rep.conflicts),
    );
    assert.match(rep.conflicts[0]!.reason, /Signet already holds .* with other bytes/);
    assert.equal(rep.files.imported, 0);
    if (signetDb.url) {
      const now = await pgQuery<{ n: number }>(signetDb.url, 'select count(*)::int as n from tuf_files where gun = $1', [GAMMA]);
      assert.deepEqual(now, before);
      const leaked = await pgQuery<{ n: number }>(signetDb.url, `select count(*)::int as n from tuf_files where gun = $1 and version >= 50`, [ALPHA]);
      assert.equal(leaked[0]!.n, 0);
    }
    const human = await signet(sourceArgs(), signetEnv);
    assert.equal(human.code, 1);
    assert.match(human.stdout, new RegExp(`^REFUSED ${ALPHA} targets v50: `, 'm'));
    assert.match(human.stdout, new RegExp(`^CONFLICT ${GAMMA} `, 'm'));
  });

  test('a conflict is resolved by deleting the repository from Signet and importing it again', async () => {
    let server = await spawnServer({ ...signetEnv, SIGNET_LOG_LEVEL: 'warn' });
    running.push(server);
    try {
      const cli = (dir: string, args: string[]) => notaryCli({ server: server.url, trustDir: path.join(work, dir) }, args);
      await expectOk(cli('trust', ['delete', GAMMA, '--remote']));
      assert.notEqual((await cli('after-delete', ['list', GAMMA])).code, 0);
      // With Postgres, Signet keeps serving during the import; the embedded store has one process.
      if (!signetDb.url) await server.stop();
      const r = await signet([...sourceArgs(), '--gun', GAMMA, '--json'], signetEnv);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.ok(report(r).files.imported > 0);
      if (!signetDb.url) {
        server = await spawnServer({ ...signetEnv, SIGNET_LOG_LEVEL: 'warn' });
        running.push(server);
      }
      const list = await expectOk(cli('after-conflict', ['list', GAMMA]));
      assert.match(list, /^v10 /m);
      assert.doesNotMatch(list, /^v9 /m);
      // notary's history continues: its client publishes to Signet with the imported ed25519 key.
      await expectOk(cli('trust-at-migration', ['add', GAMMA, 'v11', payload(), '-p']));
    } finally {
      await server.stop();
    }
  });

  test('keys: a wrong passphrase and a missing one are reported, files still imported; exit 1', async () => {
    const db = await createTestDatabase();
    try {
      const env = { SIGNET_DATA_DIR: db.dataDir, ...(db.url ? { DATABASE_URL: db.url } : {}) };
      const wrong = await signet([...sourceArgs(), '--gun', BETA, '--passphrase', `${ALIAS}=not-it`, '--json'], env);
      assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
      const w = report(wrong);
      assert.equal(w.repositories.total, 1);
      assert.ok(w.files.imported > 0);
      assert.equal(w.keys.failed, 1);
      assert.match(w.keyProblems[0]!.reason, /cannot decrypt with the passphrase of alias signetalias: wrong passphrase/);

      const none = await signet([...sourceArgs(), '--gun', BETA], env);
      assert.equal(none.code, 1, none.stdout + none.stderr);
      assert.match(none.stdout, /^MISSING PASSPHRASE alias signetalias \(--passphrase signetalias=… or NOTARY_SIGNER_SIGNETALIAS\): 1 keys not imported$/m);
      assert.match(none.stdout, /NO TIMESTAMP KEY example\.com\/import\/beta/);

      // What the report advises: the owner rotates the timestamp key, then publishes again.
      const server = await spawnServer({ ...env, SIGNET_LOG_LEVEL: 'warn' });
      running.push(server);
      try {
        const dir = path.join(work, 'trust-beta');
        cpSync(path.join(work, 'trust-at-migration'), dir, { recursive: true });
        const cli = (args: string[]) => notaryCli({ server: server.url, trustDir: dir }, args);
        assert.notEqual((await cli(['add', BETA, 'v5', payload(), '-p'])).code, 0);
        await expectOk(cli(['key', 'rotate', BETA, 'timestamp', '-r']));
        await expectOk(cli(['publish', BETA]));
        assert.match(await expectOk(cli(['list', BETA])), /^v5 /m);
      } finally {
        await server.stop();
      }
    } finally {
      await db.drop();
    }
  });

  test('usage errors exit 2; an unreachable MySQL source is reported clearly', async () => {
    const mysql = await signet(['import', '--from', `mysql://notary@127.0.0.1:${await freePort()}/notaryserver`], signetEnv);
    assert.equal(mysql.code, 2);
    assert.match(mysql.stderr, /--from: .*ECONNREFUSED/);
    const noFrom = await signet(['import'], signetEnv);
    assert.equal(noFrom.code, 2);
    assert.match(noFrom.stderr, /--from is required/);
    const unknown = await signet(['import', '--from', serverDb, '--bogus'], signetEnv);
    assert.equal(unknown.code, 2);
    const notNotary = await signet(['import', '--from', cluster.url], signetEnv);
    assert.equal(notNotary.code, 2);
    assert.match(notNotary.stderr, /no tuf_files table/);
  });
});
