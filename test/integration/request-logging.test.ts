/**
 * Per-request log lines under load stay readable: by default (SIGNET_LOG_REQUESTS=writes) reads,
 * missing paths included, are not logged at info, while every write is, whatever its answer;
 * `all`, `errors`, `off` and the read sample do what they say. Lines carry the request ID,
 * auth refusals included.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { startDevTokenService } from '../../src/auth/dev-token-service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { spawnServer, type ServerProcess } from '../support/server.js';

const databases: TestDatabase[] = [];
const servers: ServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.stop('SIGKILL');
  for (const d of databases) await d.drop();
});

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const db = await createTestDatabase();
  databases.push(db);
  const server = await spawnServer({
    SIGNET_DATA_DIR: db.dataDir,
    DATABASE_URL: db.url ?? '',
    SIGNET_EXPIRY_SCAN_INTERVAL: '0',
    SIGNET_LOG_LEVEL: 'info',
    ...env,
  });
  servers.push(server);
  return server;
}

type Line = Record<string, unknown>;
const lines = (out: string): Line[] =>
  out.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Line];
    } catch {
      return [];
    }
  });
const requestLines = (s: ServerProcess) => lines(s.output()).filter((l) => l['msg'] === 'request');
const settle = () => new Promise((r) => setTimeout(r, 300));

async function traffic(url: string): Promise<{ reads: string[]; write: string }> {
  const reads: string[] = [];
  for (let i = 0; i < 200; i++) {
    const res = await request(url).get(`/v2/registry.example.com/scan/app${i}/_trust/tuf/root.json`);
    assert.equal(res.status, 404);
    reads.push(res.headers['x-request-id'] as string);
  }
  const write = await request(url)
    .post('/v2/registry.example.com/scan/app/_trust/tuf/')
    .set('X-Request-Id', 'the-write')
    .type('multipart/form-data; boundary=x')
    .send('--x--\r\n');
  assert.equal(write.status, 400);
  return { reads, write: 'the-write' };
}

describe('SIGNET_LOG_REQUESTS', () => {
  test('writes (default): 200 missing-path reads write no line; the refused write is logged at info with its ID', async () => {
    const s = await start({});
    const before = s.output().length;
    const { write } = await traffic(s.url);
    await settle();
    const logged = requestLines(s);
    assert.deepEqual(
      logged.map((l) => [l['requestId'], l['level'], l['status']]),
      [[write, 'info', 400]],
    );
    assert.ok(s.output().length - before < 2000, `200 reads and one write wrote ${s.output().length - before} bytes of log`);
  });

  test('all: every request at info', async () => {
    const s = await start({ SIGNET_LOG_REQUESTS: 'all' });
    const { reads } = await traffic(s.url);
    await settle();
    const ids = new Set(
      requestLines(s)
        .filter((l) => l['level'] === 'info')
        .map((l) => l['requestId']),
    );
    assert.ok(reads.every((id) => ids.has(id)));
    assert.ok(ids.has('the-write'));
  });

  test('writes with SIGNET_LOG_READ_SAMPLE=1: reads come back at info', async () => {
    const s = await start({ SIGNET_LOG_READ_SAMPLE: '1' });
    const { reads } = await traffic(s.url);
    await settle();
    assert.equal(requestLines(s).filter((l) => reads.includes(l['requestId'] as string) && l['level'] === 'info').length, reads.length);
  });

  test('errors and off: not even the refused write', async () => {
    for (const mode of ['errors', 'off']) {
      const s = await start({ SIGNET_LOG_REQUESTS: mode });
      await traffic(s.url);
      await settle();
      assert.deepEqual(requestLines(s), [], mode);
    }
  });

  test('at debug level the reads are there, at debug', async () => {
    const s = await start({ SIGNET_LOG_LEVEL: 'debug' });
    const { reads } = await traffic(s.url);
    await settle();
    const debug = requestLines(s)
      .filter((l) => l['level'] === 'debug')
      .map((l) => l['requestId']);
    assert.deepEqual(debug, reads);
  });

  test('a bad mode or sample is a configuration error naming the variable', async () => {
    await assert.rejects(start({ SIGNET_LOG_REQUESTS: 'some' }), /SIGNET_LOG_REQUESTS/);
    await assert.rejects(start({ SIGNET_LOG_READ_SAMPLE: '2' }), /SIGNET_LOG_READ_SAMPLE/);
  });
});

test('a request refused by token auth is logged with its request ID', async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'signet-log-auth-'));
  const tokens = await startDevTokenService({ issuer: 'log-test', service: 'signet.log', users: [] });
  try {
    const bundle = path.join(work, 'token-ca.pem');
    writeFileSync(bundle, tokens.certificatePem);
    const s = await start({
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: tokens.realm,
      SIGNET_AUTH_SERVICE: 'signet.log',
      SIGNET_AUTH_ISSUER: 'log-test',
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
    });
    const res = await request(s.url).get('/v2/registry.example.com/private/app/_trust/tuf/root.json').set('X-Request-Id', 'refused-read');
    assert.equal(res.status, 401);
    await settle();
    const refused = lines(s.output()).find((l) => l['msg'] === 'request refused by auth');
    assert.equal(refused?.['requestId'], 'refused-read');
  } finally {
    await tokens.close();
    rmSync(work, { recursive: true, force: true });
  }
});
