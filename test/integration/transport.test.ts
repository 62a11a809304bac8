/**
 * Transport-level abuse: no request, however its bytes are cut, lied about or trickled, may end
 * a Signet process. Every case sends exact bytes on a raw socket to Signet running as its own
 * process, asserts the answer node or Signet gives (where it is determinate), and then that the
 * server still answers its health check and that no process died or was restarted.
 *
 * The matrix: 1 worker and 2 workers (SIGNET_WORKERS, needs Postgres: TEST_DATABASE_URL), over
 * http and https. A 413 with `Connection: close` once ended the process (the finish observer
 * read the address of a socket already gone); under 2 workers three such requests took both
 * workers down, which the supervising process hid by restarting them: hence the check of its
 * output for 'worker exited', not only of the health answer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { closeAll, exchange, RawConnection, type RawResponse, type RawTarget } from '../support/raw-http.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { makeTestTls, type TestTls } from '../support/tls.js';

// SIGNET_MAX_PART_BYTES cannot go below 1024, and a part over it must fit in a body within the
// body limit, so the body limit is the smallest that leaves room for one: 2 KiB.
const MAX_BODY = 2048;
const MAX_PART = 1024;
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
/** Node checks its timeouts once a second (connectionsCheckingInterval): allow that and a loaded machine. */
const TIMEOUT_SLACK_MS = 3000;

const HOST = 'Host: signet\r\n';
const UPDATE = '/v2/registry.example.com/transport/app/_trust/tuf/';
const MULTIPART = 'Content-Type: multipart/form-data; boundary=x\r\n';
const HEALTH = `GET /_notary_server/health HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`;

/** A multipart body of one file, `root`, holding `content`. */
function multipart(content: string): string {
  return `--x\r\nContent-Disposition: form-data; name="files"; filename="root"\r\n\r\n${content}\r\n--x--\r\n`;
}
/** Within every limit, and refused for what it says: 400 MALFORMED_JSON. */
const SMALL = multipart('not json');

/** A POST to the update route: request line, headers (each ending in CRLF), blank line, body. */
function post(headers: string, body = '', version = 'HTTP/1.1'): string {
  return `POST ${UPDATE} ${version}\r\n${HOST}${MULTIPART}${headers}\r\n${body}`;
}
function fixed(body: string): string {
  return post(`Content-Length: ${Buffer.byteLength(body)}\r\n`, body);
}
/** `body` in chunks of `size`, with the last-chunk marker. */
function chunks(body: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < body.length; i += size) {
    const piece = body.slice(i, i + size);
    out.push(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`);
  }
  return out;
}
const CHUNKED = 'Transfer-Encoding: chunked\r\n';

function errorCode(r: RawResponse | undefined): string | undefined {
  try {
    return (JSON.parse(r?.body.toString() ?? '') as { errors: { code: string }[] }).errors[0]?.code;
  } catch {
    return undefined;
  }
}
function statuses(rs: RawResponse[]): number[] {
  return rs.map((r) => r.status);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A 413 in notary's envelope, telling the client the connection is done. */
function assertTooLarge(r: RawResponse | undefined, what: string): void {
  assert.equal(r?.status, 413, `${what}: ${r?.status} ${r?.body.toString()}`);
  assert.equal(errorCode(r), 'TOO_LARGE');
  assert.match(r!.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(r!.headers['connection'], 'close');
}

interface Cell {
  name: string;
  workers: 1 | 2;
  tls: boolean;
}

interface Running {
  cell: Cell;
  target: RawTarget;
  server: ServerProcess;
}

interface Case {
  name: string;
  /** Runs beside the other slow cases of its cell: each waits for a server timeout. */
  slow?: boolean;
  run(s: Running): Promise<void>;
}

/** A client that writes `opening`, then one more piece every 200 ms, until the server cuts it off. */
async function trickle(s: Running, opening: string, piece: string): Promise<RawConnection> {
  const conn = await RawConnection.open(s.target);
  if (opening) await conn.write(opening);
  const timer = piece ? setInterval(() => void conn.write(piece), 200) : null;
  try {
    await conn.waitClosed(REQUEST_TIMEOUT_MS + TIMEOUT_SLACK_MS + 2000);
  } finally {
    if (timer) clearInterval(timer);
    conn.destroy();
  }
  return conn;
}

/** The server answered 408 and closed, within `limitMs` plus node's checking slack. */
function assertTimedOut(conn: RawConnection, limitMs: number): void {
  assert.ok(conn.closedAfterMs !== null, 'the server never closed the connection');
  assert.ok(conn.closedAfterMs <= limitMs + TIMEOUT_SLACK_MS, `held ${conn.closedAfterMs} ms (limit ${limitMs} ms)`);
  assert.deepEqual(statuses(conn.finals), [408], conn.data.toString('latin1').slice(0, 200));
}

/** Send a request, hang up (FIN with `end`, reset with `destroy`) after `pauseMs`; the server's bytes. */
async function hangUp(s: Running, bytes: string, how: 'end' | 'destroy', pauseMs = 50): Promise<RawConnection> {
  const conn = await RawConnection.open(s.target);
  await conn.write(bytes);
  await sleep(pauseMs);
  if (how === 'end') conn.end();
  else conn.destroy();
  await conn.waitClosed(3000);
  conn.destroy();
  return conn;
}

const cases: Case[] = [
  {
    name: 'chunked body over SIGNET_MAX_BODY_BYTES: 413 TOO_LARGE, connection closed',
    async run(s) {
      const body = multipart('a'.repeat(MAX_BODY + 500));
      const r = await exchange(s.target, post(CHUNKED) + chunks(body, 1000).join('') + '0\r\n\r\n');
      assertTooLarge(r.responses[0], 'chunked over the limit');
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'chunked 5 KB body written chunk by chunk: 413 TOO_LARGE',
    async run(s) {
      const conn = await RawConnection.open(s.target);
      await conn.write(post(CHUNKED));
      // Stop writing once the answer is in: the rest would only meet a closed socket.
      for (const chunk of chunks(multipart('b'.repeat(5 * 1024)), 512)) {
        if (conn.finals.length > 0 || conn.closed) break;
        await conn.write(chunk);
        await sleep(5);
      }
      const [r] = await conn.finalResponses(1);
      assertTooLarge(r, 'chunked 5 KB');
      assert.equal(await conn.waitClosed(2000), true);
      conn.destroy();
    },
  },
  {
    name: 'Content-Length over the limit, body sent: 413 TOO_LARGE',
    async run(s) {
      const r = await exchange(s.target, fixed('c'.repeat(MAX_BODY + 1)));
      assertTooLarge(r.responses[0], 'Content-Length over the limit');
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'Content-Length over the limit, body never sent: 413 TOO_LARGE from the headers alone',
    async run(s) {
      const r = await exchange(s.target, post(`Content-Length: ${MAX_BODY * 1000}\r\n`));
      assertTooLarge(r.responses[0], 'declared length over the limit');
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'a file over SIGNET_MAX_PART_BYTES in a body within the limit: 413 TOO_LARGE',
    async run(s) {
      const body = multipart('d'.repeat(MAX_PART + 100));
      assert.ok(Buffer.byteLength(body) <= MAX_BODY);
      const r = await exchange(s.target, fixed(body));
      assertTooLarge(r.responses[0], 'part over the limit');
      assert.match(r.responses[0]!.body.toString(), /exceeds 1024 bytes/);
    },
  },
  {
    name: 'a body within every limit: 400 MALFORMED_JSON on a connection kept alive',
    async run(s) {
      const r = await exchange(s.target, fixed(SMALL));
      assert.deepEqual(statuses(r.responses), [400]);
      assert.equal(errorCode(r.responses[0]), 'MALFORMED_JSON');
      assert.equal(r.closed, false);
    },
  },
  {
    name: 'client resets mid-body (chunked)',
    async run(s) {
      const conn = await hangUp(s, post(CHUNKED) + '400\r\n' + 'e'.repeat(100), 'destroy');
      assert.deepEqual(conn.finals, []);
    },
  },
  {
    name: 'client half-closes mid-body (chunked): 400 from node',
    async run(s) {
      const conn = await hangUp(s, post(CHUNKED) + '400\r\n' + 'e'.repeat(100), 'end');
      assert.deepEqual(statuses(conn.finals), [400]);
    },
  },
  {
    name: 'client resets mid-body (Content-Length)',
    async run(s) {
      const conn = await hangUp(s, post('Content-Length: 1500\r\n', 'f'.repeat(100)), 'destroy');
      assert.deepEqual(conn.finals, []);
    },
  },
  {
    name: 'Content-Length claims more than is sent, then the client half-closes: 400 from node',
    async run(s) {
      const conn = await hangUp(s, post(`Content-Length: ${Buffer.byteLength(SMALL) + 200}\r\n`, SMALL), 'end');
      assert.deepEqual(statuses(conn.finals), [400]);
      assert.equal(conn.closed, true);
    },
  },
  {
    name: 'Content-Length claims less than is sent: the rest is a garbage request, 400 and closed',
    async run(s) {
      const r = await exchange(s.target, post('Content-Length: 10\r\n', SMALL));
      // Node answers the unparseable rest at once, before the first request's answer is ready,
      // and closes: either way, the one answer the client sees is a 400.
      assert.deepEqual(statuses(r.responses), [400]);
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'Expect: 100-continue with a small body: 100, then 400 MALFORMED_JSON',
    async run(s) {
      const conn = await RawConnection.open(s.target);
      await conn.write(post(`Content-Length: ${Buffer.byteLength(SMALL)}\r\nExpect: 100-continue\r\n`));
      assert.equal(await conn.waitUntil(() => conn.responses.length >= 1, 3000), true, 'no 100 Continue');
      assert.equal(conn.responses[0]!.status, 100);
      await conn.write(SMALL);
      const finals = await conn.finalResponses(1);
      assert.deepEqual(statuses(finals), [400]);
      assert.equal(errorCode(finals[0]), 'MALFORMED_JSON');
      conn.destroy();
    },
  },
  {
    name: 'Expect: 100-continue over the limit: 413 TOO_LARGE without the body being sent',
    async run(s) {
      const conn = await RawConnection.open(s.target);
      await conn.write(post(`Content-Length: ${MAX_BODY + 1}\r\nExpect: 100-continue\r\n`));
      const finals = await conn.finalResponses(1);
      // Node says 100 before Signet sees the request; the 413 follows at once.
      assert.deepEqual(statuses(conn.responses), [100, 413]);
      assertTooLarge(finals[0], '100-continue over the limit');
      assert.equal(await conn.waitClosed(2000), true);
      conn.destroy();
    },
  },
  {
    name: 'pipelined GETs and a POST in one write: answers in order',
    async run(s) {
      const missing = '/v2/registry.example.com/transport/none/_trust/tuf/root.json';
      const bytes =
        `GET /v2/ HTTP/1.1\r\n${HOST}X-Request-Id: p1\r\n\r\n` +
        `GET /_notary_server/health HTTP/1.1\r\n${HOST}X-Request-Id: p2\r\n\r\n` +
        `GET ${missing} HTTP/1.1\r\n${HOST}X-Request-Id: p3\r\n\r\n` +
        post(`Content-Length: ${Buffer.byteLength(SMALL)}\r\nX-Request-Id: p4\r\n`, SMALL) +
        `GET /v2/ HTTP/1.1\r\n${HOST}X-Request-Id: p5\r\nConnection: close\r\n\r\n`;
      const r = await exchange(s.target, bytes, 5);
      assert.deepEqual(statuses(r.responses), [200, 200, 404, 400, 200]);
      assert.deepEqual(
        r.responses.map((x) => x.headers['x-request-id']),
        ['p1', 'p2', 'p3', 'p4', 'p5'],
      );
      assert.equal(errorCode(r.responses[2]), 'METADATA_NOT_FOUND');
      assert.equal(errorCode(r.responses[3]), 'MALFORMED_JSON');
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'pipelined: an over-limit chunked POST between GETs: answers up to the 413, then closed',
    async run(s) {
      const body = multipart('g'.repeat(MAX_BODY));
      const bytes = `GET /v2/ HTTP/1.1\r\n${HOST}\r\n` + post(CHUNKED) + chunks(body, 700).join('') + '0\r\n\r\n' + `GET /v2/ HTTP/1.1\r\n${HOST}\r\n`;
      const r = await exchange(s.target, bytes, 3);
      assert.deepEqual(statuses(r.responses), [200, 413]);
      assertTooLarge(r.responses[1], 'pipelined over the limit');
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'HTTP/1.0 GET: 200, connection closed',
    async run(s) {
      const r = await exchange(s.target, 'GET /_notary_server/health HTTP/1.0\r\n\r\n');
      assert.deepEqual(statuses(r.responses), [200]);
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'HTTP/1.0 POST with a body: 400 MALFORMED_JSON, connection closed',
    async run(s) {
      const r = await exchange(s.target, post(`Content-Length: ${Buffer.byteLength(SMALL)}\r\n`, SMALL, 'HTTP/1.0'));
      assert.deepEqual(statuses(r.responses), [400]);
      assert.equal(errorCode(r.responses[0]), 'MALFORMED_JSON');
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'HTTP/1.0 POST over the limit: 413 TOO_LARGE',
    async run(s) {
      const body = 'h'.repeat(MAX_BODY + 1);
      const r = await exchange(s.target, post(`Content-Length: ${body.length}\r\n`, body, 'HTTP/1.0'));
      assertTooLarge(r.responses[0], 'HTTP/1.0 over the limit');
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'one header over 16 KiB: 431',
    async run(s) {
      const r = await exchange(s.target, `GET /v2/ HTTP/1.1\r\n${HOST}X-Big: ${'i'.repeat(17 * 1024)}\r\n\r\n`);
      assert.deepEqual(statuses(r.responses), [431]);
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'many small headers, 16 KiB in all, on a POST: 431',
    async run(s) {
      const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'j'.repeat(40)}\r\n`).join('');
      const r = await exchange(s.target, post(`${many}Content-Length: ${Buffer.byteLength(SMALL)}\r\n`, SMALL));
      assert.deepEqual(statuses(r.responses), [431]);
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'malformed request line: 400',
    async run(s) {
      const r = await exchange(s.target, 'GARBAGE\r\n\r\n');
      assert.deepEqual(statuses(r.responses), [400]);
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'unknown HTTP version: 400',
    async run(s) {
      const r = await exchange(s.target, `GET /v2/ HTTP/9.9\r\n${HOST}\r\n`);
      assert.deepEqual(statuses(r.responses), [400]);
    },
  },
  {
    name: 'header name with a space and a NUL in a value: 400',
    async run(s) {
      const a = await exchange(s.target, `GET /v2/ HTTP/1.1\r\n${HOST}Bad Name: x\r\n\r\n`);
      assert.deepEqual(statuses(a.responses), [400]);
      const b = await exchange(s.target, `GET /v2/ HTTP/1.1\r\n${HOST}X-Nul: a\u0000b\r\n\r\n`);
      assert.deepEqual(statuses(b.responses), [400]);
    },
  },
  {
    name: 'invalid chunk size: 400',
    async run(s) {
      const r = await exchange(s.target, post(CHUNKED) + 'ZZ\r\nabc\r\n0\r\n\r\n');
      assert.deepEqual(statuses(r.responses), [400]);
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'chunk data longer than its size says: 400',
    async run(s) {
      const r = await exchange(s.target, post(CHUNKED) + '3\r\nabcdef\r\n0\r\n\r\n');
      assert.deepEqual(statuses(r.responses), [400]);
    },
  },
  {
    name: 'chunk extension over 16 KiB: 413 from node',
    async run(s) {
      const r = await exchange(s.target, post(CHUNKED) + `1;${'k'.repeat(20 * 1024)}\r\na\r\n0\r\n\r\n`);
      assert.deepEqual(statuses(r.responses), [413]);
      assert.equal(r.closed, true);
    },
  },
  {
    name: 'both Content-Length and Transfer-Encoding: 400',
    async run(s) {
      const r = await exchange(s.target, post(`Content-Length: 5\r\n${CHUNKED}`) + '0\r\n\r\n');
      assert.deepEqual(statuses(r.responses), [400]);
    },
  },
  {
    name: 'a request, then the client half-closes: still answered',
    async run(s) {
      const conn = await hangUp(s, fixed(SMALL), 'end', 0);
      assert.deepEqual(statuses(conn.finals), [400]);
      assert.equal(errorCode(conn.finals[0]), 'MALFORMED_JSON');
    },
  },
  {
    name: 'a request, then the client resets before the answer',
    async run(s) {
      const conn = await hangUp(s, fixed(SMALL) + HEALTH, 'destroy', 0);
      assert.ok(conn.finals.length <= 2);
    },
  },
  {
    name: 'the other protocol on the port: refused, nothing served',
    async run(s) {
      const conn = await RawConnection.open(s.target, 5000, { plain: true });
      if (s.cell.tls) {
        // Plain HTTP to the TLS port: the handshake fails and the connection is dropped.
        await conn.write(`GET /_notary_server/health HTTP/1.1\r\n${HOST}\r\n`);
        assert.equal(await conn.waitClosed(3000), true);
        assert.doesNotMatch(conn.data.toString('latin1'), /^HTTP\//);
      } else {
        // A TLS ClientHello to the plain port is an unparseable request.
        await conn.write(Buffer.from('16030100a5010000a10303' + '00'.repeat(40), 'hex'));
        assert.equal(await conn.waitClosed(3000), true);
        assert.deepEqual(statuses(conn.finals), [400]);
      }
      conn.destroy();
    },
  },
  {
    name: 'slow headers: 408 after SIGNET_HEADERS_TIMEOUT_MS',
    slow: true,
    async run(s) {
      assertTimedOut(await trickle(s, `GET /v2/ HTTP/1.1\r\n${HOST}`, 'X-Slow: 1\r\n'), HEADERS_TIMEOUT_MS);
    },
  },
  {
    name: 'a connection that sends nothing: 408 after SIGNET_HEADERS_TIMEOUT_MS',
    slow: true,
    async run(s) {
      assertTimedOut(await trickle(s, '', ''), HEADERS_TIMEOUT_MS);
    },
  },
  {
    name: 'slow Content-Length body: 408 after SIGNET_REQUEST_TIMEOUT_MS',
    slow: true,
    async run(s) {
      assertTimedOut(await trickle(s, post('Content-Length: 1500\r\n'), 'l'), REQUEST_TIMEOUT_MS);
    },
  },
  {
    name: 'slow chunked body: 408 after SIGNET_REQUEST_TIMEOUT_MS',
    slow: true,
    async run(s) {
      assertTimedOut(await trickle(s, post(CHUNKED), '1\r\nm\r\n'), REQUEST_TIMEOUT_MS);
    },
  },
];

const cells: Cell[] = [
  { name: '1 worker, http', workers: 1, tls: false },
  { name: '1 worker, https', workers: 1, tls: true },
  { name: '2 workers, http', workers: 2, tls: false },
  { name: '2 workers, https', workers: 2, tls: true },
];

// Two workers share one database, which the embedded store cannot be: they need Postgres.
// Locally they are skipped without it; in CI they must run.
const clusterSkip =
  !process.env['TEST_DATABASE_URL'] && !process.env['CI'] ? 'SIGNET_WORKERS=2 needs Postgres: set TEST_DATABASE_URL to run the 2-worker cells' : false;

let tlsFiles: TestTls | undefined;
const tlsOnce = () => (tlsFiles ??= makeTestTls());
const started = Date.now();
let ran = 0;
let failedChecks = 0;

after(() => {
  if (tlsFiles) rmSync(tlsFiles.dir, { recursive: true, force: true });
  console.log(
    `# transport: ${cases.length} cases × ${cells.length} cells, ${ran} cases run in ${((Date.now() - started) / 1000).toFixed(1)} s, ${failedChecks} failed the after-case checks (server down, restarted, or an outage reported)`,
  );
});

for (const cell of cells) {
  describe(`transport (${cell.name})`, { skip: cell.workers > 1 ? clusterSkip : false, timeout: 60_000 }, () => {
    let db: TestDatabase | undefined;
    let running: Running | undefined;

    before(async () => {
      db = await createTestDatabase();
      if (cell.workers > 1) assert.ok(db.url, 'SIGNET_WORKERS=2 needs Postgres: set TEST_DATABASE_URL');
      const tls = cell.tls ? tlsOnce() : undefined;
      const server = await spawnServer({
        ...(db.url ? { DATABASE_URL: db.url } : {}),
        SIGNET_DATA_DIR: db.dataDir,
        SIGNET_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
        SIGNET_WORKERS: String(cell.workers),
        SIGNET_MAX_BODY_BYTES: String(MAX_BODY),
        SIGNET_MAX_PART_BYTES: String(MAX_PART),
        SIGNET_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        SIGNET_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        SIGNET_EXPIRY_SCAN_INTERVAL: '0',
        // Every log line is built, so a throw while building any of them is met here (the 413
        // crash was in building the request line, skipped below info level).
        SIGNET_LOG_LEVEL: 'debug',
        ...(tls ? { SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: tls.key } : {}),
      });
      running = { cell, server, target: { url: server.url, ...(tls ? { ca: readFileSync(tls.caCert) } : {}) } };
    });

    after(async () => {
      closeAll();
      if (running) await stopWithin(running.server, 12_000);
      await db?.drop();
    });

    /**
     * Health answers 200 (on as many fresh connections as there are workers) and nothing died
     * since output offset `since`: a supervisor restarting workers would hide a crash from the
     * health check alone.
     */
    async function assertStillServing(s: Running, since: number): Promise<void> {
      try {
        for (let i = 0; i < s.cell.workers; i++) {
          const { responses } = await exchange(s.target, HEALTH, 1, 5000).catch((e: Error) => {
            throw new Error(`health check failed: ${e.message}\n${s.server.output().slice(since).slice(-2000)}`);
          });
          assert.equal(responses[0]?.status, 200, `health: ${responses[0]?.status ?? 'no answer'}\n${s.server.output().slice(since).slice(-2000)}`);
        }
        assert.equal(s.server.child.exitCode, null, `the server exited:\n${s.server.output().slice(since).slice(-2000)}`);
        assert.equal(s.server.child.signalCode, null, 'the server was killed');
        const output = s.server.output().slice(since);
        assert.doesNotMatch(output, /worker exited/, `a worker died and was replaced:\n${output.slice(-2000)}`);
        assert.doesNotMatch(output, /"level":"(error|fatal)"/, `an error was logged:\n${output.slice(-2000)}`);
        // The database is up throughout: a client's doing must not be reported as its outage.
        assert.doesNotMatch(output, /"code":"UNAVAILABLE"/, `a client's hang-up was reported as a database outage:\n${output.slice(-2000)}`);
      } catch (e) {
        failedChecks++;
        throw e;
      }
    }

    for (const c of cases.filter((c) => !c.slow)) {
      test(c.name, { timeout: 20_000 }, async () => {
        assert.ok(running, 'the server did not start');
        const since = running.server.output().length;
        try {
          await c.run(running);
          ran++;
          await assertStillServing(running, since);
        } finally {
          // A failed assertion can leave a case's socket open; none outlives its case.
          closeAll();
        }
      });
    }

    // Each slow case waits out a server timeout; they run side by side so the cell stays fast.
    test('slow clients', { timeout: 20_000, concurrency: true }, async (t) => {
      assert.ok(running, 'the server did not start');
      const s = running;
      const since = s.server.output().length;
      try {
        await Promise.all(
          cases
            .filter((c) => c.slow)
            .map((c) =>
              t.test(c.name, async () => {
                await c.run(s);
                ran++;
                await assertStillServing(s, since);
              }),
            ),
        );
      } finally {
        closeAll();
      }
    });

    // A crash logged after its case's checks would be counted against the next case, or none.
    test('no process was lost in this cell', async () => {
      assert.ok(running, 'the server did not start');
      await assertStillServing(running, 0);
    });
  });
}

/** SIGTERM, and SIGKILL if the server has not gone within `ms`: no process is left behind. */
async function stopWithin(server: ServerProcess, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    server.stop('SIGTERM'),
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        void server.stop('SIGKILL').then(resolve);
      }, ms);
    }),
  ]);
  clearTimeout(timer);
}
