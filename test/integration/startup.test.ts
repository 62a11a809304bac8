/**
 * Start-up failures as a supervisor sees them: `signet serve` either listens or exits non-zero
 * within seconds, with one stderr line naming the setting (and the file) at fault. A database
 * that is still starting is waited for, saying so; the first start of the embedded store says
 * what it is doing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { projectRoot } from '../support/paths.js';
import { spawnServer } from '../support/server.js';
import { makeTestTls, type TestTls } from '../support/tls.js';

const main = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');
const postgres = process.env['TEST_DATABASE_URL'];
const needsPostgres = postgres ? false : 'needs TEST_DATABASE_URL';

interface Outcome {
  code: number | null;
  /** From spawn to exit. */
  ms: number;
  /** From the first stderr line that starts with `errorLine` (if given) to exit. */
  afterErrorMs: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Run `signet serve` with only the given settings; it must exit within `limitMs`, or the test fails. */
function serve(env: Record<string, string>, limitMs = 15_000, errorLine?: string): Promise<Outcome> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNET_') && k !== 'DATABASE_URL'));
  const started = Date.now();
  const child = spawn(process.execPath, [main, 'serve'], {
    env: { ...clean, SIGNET_PORT: '0', SIGNET_LOG_LEVEL: 'info', SIGNET_EXPIRY_SCAN_INTERVAL: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  let stdout = '';
  let stderr = '';
  let errorAt: number | null = null;
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (errorLine && errorAt === null && stderr.split('\n').some((l) => l.startsWith(errorLine))) errorAt = Date.now();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`signet serve still running after ${limitMs} ms:\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, limitMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      process.removeListener('exit', reap);
      const ended = Date.now();
      resolve({
        code,
        ms: ended - started,
        afterErrorMs: errorAt === null ? null : ended - errorAt,
        stdout,
        stderr,
        lines: stderr.split('\n').filter(Boolean),
      });
    });
  });
}

/** The lines that are not JSON log lines: what a person reads. */
const plain = (o: Outcome) => o.lines.filter((l) => !l.startsWith('{'));

function assertFailed(o: Outcome, code: number, line: string | RegExp): void {
  assert.equal(o.code, code, `exit code; stderr:\n${o.stderr}`);
  const said = plain(o);
  assert.ok(
    said.some((l) => (typeof line === 'string' ? l === line : line.test(l))),
    `no line ${String(line)} in:\n${o.stderr}`,
  );
  assert.equal(o.stdout.includes('signet listening'), false);
}

/** A port something else holds for the duration of `work`. */
async function withBusyPort<T>(work: (port: number) => Promise<T>): Promise<T> {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  try {
    return await work((holder.address() as net.AddressInfo).port);
  } finally {
    await new Promise((r) => holder.close(r));
  }
}

let work: string;
let tls: TestTls;
let other: TestTls;
before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'signet-startup-'));
  tls = makeTestTls();
  other = makeTestTls();
});
after(() => {
  for (const dir of [work, tls?.dir, other?.dir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A data directory that does not exist yet: the checks must refuse before creating it. */
const freshDataDir = () => path.join(mkdtempSync(path.join(work, 'data-')), 'data');

describe('TLS files are checked before the database is opened', { timeout: 120_000 }, () => {
  test('a key that does not match its certificate', async () => {
    const data = freshDataDir();
    const o = await serve({ SIGNET_DATA_DIR: data, SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: other.key });
    assertFailed(o, 2, `SIGNET_TLS_KEY ${other.key} does not match SIGNET_TLS_CERT ${tls.cert}`);
    assert.ok(o.ms < 10_000, `took ${o.ms} ms`);
    assert.equal(existsSync(path.join(data, 'pgdata')), false, 'the embedded store was opened');
  });

  test('certificate and key swapped', async () => {
    const o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_TLS_CERT: tls.key, SIGNET_TLS_KEY: tls.cert });
    assertFailed(o, 2, `SIGNET_TLS_CERT ${tls.key} is a private key, not a certificate (are SIGNET_TLS_CERT and SIGNET_TLS_KEY swapped?)`);
  });

  test('a certificate given as the key', async () => {
    const o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: tls.cert });
    assertFailed(o, 2, `SIGNET_TLS_KEY ${tls.cert} is a certificate, not a private key (are SIGNET_TLS_CERT and SIGNET_TLS_KEY swapped?)`);
  });

  test('missing and unreadable files', async () => {
    const missing = path.join(work, 'no-such.pem');
    let o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: missing });
    assertFailed(o, 2, `SIGNET_TLS_KEY ${missing} cannot be read: ENOENT: no such file or directory, open '${missing}'`);
    o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_TLS_CERT: work, SIGNET_TLS_KEY: tls.key });
    assertFailed(o, 2, new RegExp(`^SIGNET_TLS_CERT ${work} cannot be read: EISDIR`));
  });

  test('a client CA bundle that is not PEM certificates', async () => {
    const text = path.join(work, 'ca.txt');
    writeFileSync(text, 'not a certificate\n');
    let o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: tls.key, SIGNET_TLS_CLIENT_CA: text });
    assertFailed(o, 2, `SIGNET_TLS_CLIENT_CA ${text} holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----" blocks)`);
    o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: tls.key, SIGNET_TLS_CLIENT_CA: tls.key });
    assertFailed(o, 2, `SIGNET_TLS_CLIENT_CA ${tls.key} is a private key, not a certificate`);
    const broken = path.join(work, 'broken-ca.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: tls.key, SIGNET_TLS_CLIENT_CA: broken });
    assertFailed(o, 2, new RegExp(`^SIGNET_TLS_CLIENT_CA ${broken}: certificate 1 of 1 is not valid: `));
  });

  test('a bad token root certificate bundle', async () => {
    const auth = { SIGNET_AUTH: 'token', SIGNET_AUTH_REALM: 'http://127.0.0.1:1/token', SIGNET_AUTH_SERVICE: 'signet', SIGNET_AUTH_ISSUER: 'test' };
    const missing = path.join(work, 'no-bundle.pem');
    let o = await serve({ ...auth, SIGNET_DATA_DIR: freshDataDir(), SIGNET_AUTH_ROOT_CERT_BUNDLE: missing });
    assertFailed(o, 2, new RegExp(`^SIGNET_AUTH_ROOT_CERT_BUNDLE ${missing} cannot be read: ENOENT`));
    o = await serve({ ...auth, SIGNET_DATA_DIR: freshDataDir(), SIGNET_AUTH_ROOT_CERT_BUNDLE: tls.key });
    assertFailed(o, 2, `SIGNET_AUTH_ROOT_CERT_BUNDLE ${tls.key} is a private key, not a certificate`);
  });
});

describe('bad settings: exit 2, one line each, nothing opened', { timeout: 60_000 }, () => {
  test('ports are decimal numbers', async () => {
    let o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_PORT: 'abc' });
    assertFailed(o, 2, 'SIGNET_PORT: "abc" is not a port number (expected an integer 0-65535)');
    o = await serve({ SIGNET_DATA_DIR: freshDataDir(), SIGNET_PORT: '0x3c4b' });
    assertFailed(o, 2, 'SIGNET_PORT: "0x3c4b" is not a port number (expected an integer 0-65535)');
  });

  test('DATABASE_URL must be a Postgres URL; its password is never printed', async () => {
    let o = await serve({ SIGNET_DATA_DIR: freshDataDir(), DATABASE_URL: 'notaurl' });
    assertFailed(o, 2, 'DATABASE_URL: "notaurl" is not a URL (expected postgres://user:password@host:port/database or postgresql://...)');
    o = await serve({ SIGNET_DATA_DIR: freshDataDir(), DATABASE_URL: 'mysql://notary:hunter2@127.0.0.1/notary' });
    assertFailed(
      o,
      2,
      'DATABASE_URL: "mysql://notary:***@127.0.0.1/notary" is a mysql:// URL, not a Postgres one (expected postgres://user:password@host:port/database or postgresql://...)',
    );
    assert.equal(o.stderr.includes('hunter2'), false);
  });

  test('a malformed key-encryption key is found up front and not repeated', async () => {
    const data = freshDataDir();
    const o = await serve({ SIGNET_DATA_DIR: data, SIGNET_KEY_ENCRYPTION_KEY: 'my-secret-but-short' });
    assertFailed(o, 2, 'SIGNET_KEY_ENCRYPTION_KEY: the value given (19 characters, not shown) is not a key (expected 32 bytes as 64 hex characters or base64)');
    assert.equal(o.stderr.includes('my-secret'), false);
    assert.equal(existsSync(data), false);
  });

  test('a data directory that cannot be created or written', { skip: existsSync('/proc/self') ? false : 'needs /proc' }, async () => {
    let o = await serve({ SIGNET_DATA_DIR: '/proc/nope' });
    assertFailed(o, 2, "SIGNET_DATA_DIR /proc/nope cannot be created: ENOENT: no such file or directory, mkdir '/proc/nope'");
    assert.ok(o.ms < 10_000, `took ${o.ms} ms`);
    const file = path.join(work, 'a-file');
    writeFileSync(file, '');
    o = await serve({ SIGNET_DATA_DIR: file });
    assertFailed(o, 2, `SIGNET_DATA_DIR ${file} is not a directory`);
  });
});

describe('failures once the store is open still end the process at once', { timeout: 180_000 }, () => {
  test('port in use, embedded store', async () => {
    const data = freshDataDir();
    await withBusyPort(async (port) => {
      const line = `signet: SIGNET_HOST/SIGNET_PORT 127.0.0.1:${port}: the address is already in use`;
      const o = await serve({ SIGNET_DATA_DIR: data, SIGNET_PORT: String(port) }, 120_000, line);
      assertFailed(o, 1, line);
      // The store was opened (and must have been closed): the exit follows the message, not a watchdog.
      assert.ok(existsSync(path.join(data, 'pgdata', 'PG_VERSION')));
      assert.ok(o.afterErrorMs !== null && o.afterErrorMs < 1500, `exited ${o.afterErrorMs} ms after the error`);
    });
  });

  describe('on Postgres', { skip: needsPostgres }, () => {
    let db: TestDatabase;
    before(async () => {
      db = await createTestDatabase();
    });
    after(async () => {
      await db?.drop();
    });

    test('port in use', async () => {
      await withBusyPort(async (port) => {
        const line = `signet: SIGNET_HOST/SIGNET_PORT 127.0.0.1:${port}: the address is already in use`;
        const o = await serve({ DATABASE_URL: db.url!, SIGNET_DATA_DIR: db.dataDir, SIGNET_PORT: String(port) }, 15_000, line);
        assertFailed(o, 1, line);
        assert.ok(o.afterErrorMs !== null && o.afterErrorMs < 1500, `exited ${o.afterErrorMs} ms after the error`);
      });
    });

    test('several workers: one that cannot start ends the primary with its reason, not a restart loop', async () => {
      await withBusyPort(async (port) => {
        const o = await serve({ DATABASE_URL: db.url!, SIGNET_DATA_DIR: db.dataDir, SIGNET_PORT: String(port), SIGNET_WORKERS: '2' }, 20_000);
        assertFailed(
          o,
          1,
          new RegExp(`^signet: serving process \\d+ failed to start: SIGNET_HOST/SIGNET_PORT 127.0.0.1:${port}: the address is already in use$`),
        );
        assert.equal(o.stderr.includes('starting another'), false, 'a failed worker was restarted');
      });
    });

    test('several workers: bad TLS files stop the primary before it forks', async () => {
      const o = await serve({ DATABASE_URL: db.url!, SIGNET_DATA_DIR: db.dataDir, SIGNET_WORKERS: '2', SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: other.key });
      assertFailed(o, 2, `SIGNET_TLS_KEY ${other.key} does not match SIGNET_TLS_CERT ${tls.cert}`);
      assert.equal(plain(o).length, 1, o.stderr);
    });

    test('a database that refuses is retried for SIGNET_DB_CONNECT_TIMEOUT, each attempt logged, then named in the error', async () => {
      const url = 'postgres://signet:pa55word@127.0.0.1:1/signet';
      const o = await serve({ DATABASE_URL: url, SIGNET_DATA_DIR: freshDataDir(), SIGNET_DB_CONNECT_TIMEOUT: '2' });
      assertFailed(
        o,
        1,
        /^signet: cannot connect to DATABASE_URL postgres:\/\/signet:\*\*\*@127\.0\.0\.1:1\/signet: connect ECONNREFUSED 127\.0\.0\.1:1 \(\d+ attempts in 2 s\)$/,
      );
      const attempts = o.lines
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; attempt?: number; error?: string })
        .filter((l) => l.attempt);
      assert.ok(attempts.length >= 2, o.stderr);
      assert.match(
        attempts[0]!.msg,
        /^cannot connect to DATABASE_URL postgres:\/\/signet:\*\*\*@127\.0\.0\.1:1\/signet \(attempt 1\); retrying for up to 2 s$/,
      );
      assert.equal(attempts[0]!.error, 'connect ECONNREFUSED 127.0.0.1:1');
      assert.ok(o.ms >= 2000 && o.ms < 10_000, `took ${o.ms} ms`);
      assert.equal(o.stderr.includes('pa55word'), false);
    });

    test('SIGNET_DB_CONNECT_TIMEOUT=0: one attempt', async () => {
      const o = await serve({ DATABASE_URL: 'postgres://127.0.0.1:1/signet', SIGNET_DATA_DIR: freshDataDir(), SIGNET_DB_CONNECT_TIMEOUT: '0' });
      assertFailed(o, 1, 'signet: cannot connect to DATABASE_URL postgres://127.0.0.1:1/signet: connect ECONNREFUSED 127.0.0.1:1');
      assert.equal(
        o.lines.some((l) => l.includes('"attempt"')),
        false,
      );
    });

    test('a database that comes up after Signet is waited for', async () => {
      // Postgres "starting": nothing on the port at first, then a relay to the real server.
      const target = new URL(db.url!);
      const free = net.createServer();
      await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
      const port = (free.address() as net.AddressInfo).port;
      await new Promise((r) => free.close(r));
      const late = new URL(db.url!);
      late.hostname = '127.0.0.1';
      late.port = String(port);
      const sockets = new Set<net.Socket>();
      const relay = net.createServer((client) => {
        const upstream = net.connect(Number(target.port || 5432), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => {});
        }
        client.pipe(upstream).pipe(client);
      });
      // The database "comes up" once Signet has said its first attempt failed (a fixed delay would
      // race with a slow start on a loaded machine).
      let opened = false;
      const open = () => {
        if (!opened) relay.listen(port, '127.0.0.1');
        opened = true;
      };
      const opening = setTimeout(open, 20_000);
      try {
        const server = await spawnServer(
          {
            DATABASE_URL: late.toString(),
            SIGNET_DATA_DIR: db.dataDir,
            SIGNET_DB_CONNECT_TIMEOUT: '30',
            SIGNET_LOG_LEVEL: 'info',
          },
          { onOutput: (text) => /"attempt":1/.test(text) && open() },
        );
        try {
          assert.match(server.output(), /"attempt":1.*cannot connect to DATABASE_URL/);
          assert.match(server.output(), /"msg":"connected to DATABASE_URL"/);
        } finally {
          await server.stop();
        }
      } finally {
        clearTimeout(opening);
        for (const s of sockets) s.destroy();
        if (opened) await new Promise((r) => relay.close(r));
      }
    });
  });
});

describe('first start of the embedded store', { timeout: 180_000 }, () => {
  test('says what it is doing before the slow step, and listens', async () => {
    const data = freshDataDir();
    const server = await spawnServer({ SIGNET_DATA_DIR: data, DATABASE_URL: '' });
    try {
      const out = server.output();
      const said = out.indexOf(`initialising the embedded database in ${data} (first start; this can take up to a minute)`);
      assert.ok(said >= 0, out);
      assert.ok(said < out.indexOf('signet listening'), out);
    } finally {
      await server.stop();
    }
    // Later starts do not say it.
    const again = await spawnServer({ SIGNET_DATA_DIR: data, DATABASE_URL: '' });
    try {
      assert.equal(again.output().includes('initialising the embedded database'), false);
    } finally {
      await again.stop();
    }
  });
});
