/**
 * Running Signet: Prometheus metrics, structured request logs with request IDs, readiness, the
 * audit trail (anonymous and with token auth), the expiring-roles report and the expiry watch
 * that re-signs server-held timestamps ahead of time, repository history for forensics, the
 * administration commands of `signet`, and graceful shutdown with a request in flight.
 *
 * Most checks run against one `signet serve` process (as operators run it) with debug logs and a
 * known key-encryption key. The admin commands share its database, so they need Postgres
 * (TEST_DATABASE_URL); the embedded store serves one process at a time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { startDevTokenService, type RunningTokenService } from '../../src/auth/dev-token-service.js';
import { createRepository, fetchServerKey, postUpdate, type TestRepository } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { runSignet, type CliResult } from '../support/cli.js';
import { spawnServer, startTestServer, type ServerProcess, type TestServer } from '../support/server.js';
import {
  certKey,
  ecdsaKey,
  inDays,
  multipartBody,
  rootDoc,
  serverKey,
  sha256Hex,
  signFile,
  snapshotDoc,
  targetFile,
  targetsDoc,
  type TestKey,
} from '../support/tuf-kit.js';
import type { AuditRecord as StoredAuditRecord } from '../../src/storage/audit-store.js';
import type { RepositoryAt } from '../../src/service/history.js';
import { rekeyServerKeys } from '../../src/service/rekey-server-keys.js';
import { KeyEncryptionKey, loadKeyEncryptionKey } from '../../src/signing/key-encryption.js';

const PG = Boolean(process.env['TEST_DATABASE_URL']);
const NEEDS_PG = PG ? false : 'needs TEST_DATABASE_URL: the embedded store serves one process at a time';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// ---- helpers ----

const signet = (env: Record<string, string>, ...args: string[]) => runSignet(args, env);

function json<T = unknown>(r: CliResult, what: string): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`${what}: not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** Value of one sample of a Prometheus text exposition, matching every label given. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

type LogLine = Record<string, unknown>;
function logLines(output: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // a line still being written
    }
  }
  return out;
}

/** Raw bytes of a GET, with status. */
async function getBytes(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(url);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** POST an update with our own request ID. */
async function postWithId(url: string, gun: string, parts: Record<string, Buffer>, requestId?: string) {
  const { body, contentType } = multipartBody(parts);
  let req = request(url).post(`/v2/${gun}/_trust/tuf/`).set('Content-Type', contentType);
  if (requestId) req = req.set('X-Request-Id', requestId);
  return req.send(body);
}

const newTargets = (repo: TestRepository, version: number, extra: Record<string, unknown> = {}) =>
  signFile(targetsDoc({ version, targets: { [`release-${version}`]: targetFile(`${repo.gun} ${version}`), ...extra } }), [repo.targetsKey]);

/** A repository (server-held snapshot) whose targets expire at `expires`. */
async function createExpiring(url: string, gun: string, expires: string): Promise<{ rootKey: TestKey; targetsKey: TestKey }> {
  const timestamp = await fetchServerKey(url, gun, 'timestamp');
  const snapshot = await fetchServerKey(url, gun, 'snapshot');
  const rootKey = certKey({ commonName: gun });
  const targetsKey = ecdsaKey();
  const root = signFile(rootDoc({ root: [rootKey], targets: [targetsKey], snapshot: [snapshot], timestamp: [timestamp] }), [rootKey]);
  const targets = signFile(targetsDoc({ expires }), [targetsKey]);
  const res = await postUpdate(url, gun, { root, targets });
  assert.equal(res.status, 200, res.text);
  return { rootKey, targetsKey };
}

// The wire shapes are the service's own types; audit details are read as objects here.
type AuditRecord = Omit<StoredAuditRecord, 'detail'> & { detail: Record<string, unknown> };

// ---- one `signet serve` process ----

describe('a signet serve process', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let srv: ServerProcess;
  let env: Record<string, string>;
  const kek = randomBytes(32).toString('hex');

  before(async () => {
    db = await createTestDatabase();
    env = { DATABASE_URL: db.url ?? '', SIGNET_DATA_DIR: db.dataDir, SIGNET_KEY_ENCRYPTION_KEY: kek };
    // A keep-alive timeout above a load balancer's idle timeout, as is usual behind one.
    srv = await spawnServer({ ...env, SIGNET_LOG_LEVEL: 'debug', SIGNET_KEEP_ALIVE_TIMEOUT_MS: '30000' });
  });

  after(async () => {
    await srv?.stop('SIGKILL');
    await db?.drop();
  });

  describe('metrics', () => {
    const G = 'registry.example.com/ops/metrics';

    test('GET /metrics counts requests, latency, updates (accepted and refused by reason), signatures, cache and pool', async () => {
      const repo = await createRepository(srv.url, G, { serverSnapshot: true });
      for (let i = 0; i < 3; i++) assert.equal((await request(srv.url).get(`/v2/${G}/_trust/tuf/root.json`)).status, 200);
      assert.equal((await request(srv.url).get(`/v2/${G}/_trust/tuf/nothing.json`)).status, 404);
      // Refused: targets signed by a key the root does not list; and a stale version.
      const forged = signFile(targetsDoc({ version: 2 }), [ecdsaKey()]);
      const bad = await postUpdate(srv.url, G, { targets: forged });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.body.errors?.[0]?.code, 'INVALID_UPDATE');
      const stale = await postUpdate(srv.url, G, { targets: signFile(targetsDoc({ version: 1, targets: { other: targetFile('x') } }), [repo.targetsKey]) });
      assert.equal(stale.status, 400, stale.text);
      assert.equal(stale.body.errors?.[0]?.code, 'VERSION');

      const res = await request(srv.url).get('/metrics');
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /^text\/plain/);
      const m = res.text;
      assert.ok((sample(m, 'signet_http_requests_total', { route: 'current', method: 'GET', status: '200' }) ?? 0) >= 3, 'reads counted');
      assert.equal(sample(m, 'signet_http_requests_total', { route: 'update', method: 'POST', status: '200' }), 1);
      assert.equal(sample(m, 'signet_http_requests_total', { route: 'update', method: 'POST', status: '400' }), 2);
      assert.ok((sample(m, 'signet_http_requests_total', { route: 'getKey', method: 'GET', status: '200' }) ?? 0) >= 2, 'key requests counted');
      assert.ok(sample(m, 'signet_http_requests_total', { route: 'notFound', method: 'GET', status: '404' }) !== undefined, 'unknown paths counted');
      assert.match(m, /^signet_http_request_duration_seconds_bucket\{[^}]*route="current"[^}]*\} \d+$/m);
      assert.match(m, /^signet_http_request_duration_seconds_count\{route="update"\} 3$/m);
      assert.equal(sample(m, 'signet_updates_total', { result: 'accepted' }), 1);
      assert.equal(sample(m, 'signet_updates_total', { result: 'refused', reason: 'INVALID_UPDATE:ErrBadTargets' }), 1);
      assert.equal(sample(m, 'signet_updates_total', { result: 'refused', reason: 'VERSION' }), 1);
      assert.equal(sample(m, 'signet_signing_operations_total', { role: 'timestamp' }), 1);
      assert.equal(sample(m, 'signet_signing_operations_total', { role: 'snapshot' }), 1, 'the server signed the snapshot');
      assert.ok(sample(m, 'signet_metadata_cache_requests_total', { result: 'miss' }) !== undefined, m);
      assert.ok((sample(m, 'signet_metadata_cache_requests_total', { result: 'hit' }) ?? 0) >= 1, 'repeated reads come from memory');
      assert.ok(sample(m, 'signet_process_resident_memory_bytes') !== undefined, 'process metrics (prom-client defaults, prefixed signet_)');
      if (PG) {
        assert.ok((sample(m, 'signet_db_pool_size', { state: 'total' }) ?? 0) >= 1, m);
        assert.ok(sample(m, 'signet_db_pool_size', { state: 'idle' }) !== undefined);
        assert.ok(sample(m, 'signet_db_pool_size', { state: 'waiting' }) !== undefined);
      } else {
        assert.equal(sample(m, 'signet_db_pool_size'), undefined, 'no pool with the embedded store');
      }
    });
  });

  describe('logs', () => {
    const G = 'registry.example.com/ops/logs';
    const find = (pred: (l: LogLine) => boolean, what: string) => eventually(() => logLines(srv.output()).find(pred), what);
    let repo: TestRepository;

    before(async () => {
      repo = await createRepository(srv.url, G, { serverSnapshot: true });
    });

    test('every line is JSON; a read logs requestId (the X-Request-Id answered), method, path, status, route, gun, subject at debug', async () => {
      const res = await request(srv.url).get(`/v2/${G}/_trust/tuf/root.json`);
      assert.equal(res.status, 200);
      const id = res.headers['x-request-id'] as string;
      assert.match(id, UUID);
      const line = await find((l) => l['requestId'] === id, `log line of ${id}`);
      assert.equal(line['msg'], 'request');
      assert.equal(line['level'], 'debug');
      assert.equal(line['method'], 'GET');
      assert.equal(line['path'], `/v2/${G}/_trust/tuf/root.json`);
      assert.equal(line['status'], 200);
      assert.equal(line['route'], 'current');
      assert.equal(line['gun'], G);
      assert.equal(line['subject'], 'anonymous');
      assert.equal(line['service'], 'signet');
      assert.equal(typeof line['ms'], 'number');
      assert.match(String(line['time']), /^\d{4}-\d\d-\d\dT/);
      for (const raw of srv.output().split('\n')) {
        if (raw.trim() === '' || /^signet listening on /.test(raw)) continue;
        assert.doesNotThrow(() => JSON.parse(raw), `not a JSON log line: ${raw}`);
      }
    });

    test('a well-formed caller X-Request-Id is echoed and logged; a malformed one is replaced', async () => {
      const mine = 'ops-test_1.2:abc-DEF';
      const echoed = await request(srv.url).get(`/v2/${G}/_trust/tuf/timestamp.json`).set('X-Request-Id', mine);
      assert.equal(echoed.headers['x-request-id'], mine);
      const line = await find((l) => l['requestId'] === mine, 'the caller’s request ID in the log');
      assert.equal(line['route'], 'current');

      for (const bad of ['has space', 'x'.repeat(65), 'quote"me', '%C3%BC', 'semi;colon', '']) {
        const res = await request(srv.url).get(`/v2/${G}/_trust/tuf/timestamp.json`).set('X-Request-Id', bad);
        const id = res.headers['x-request-id'] as string;
        assert.notEqual(id, bad);
        assert.match(id, UUID, `malformed ${JSON.stringify(bad)} replaced by a new ID`);
        await find((l) => l['requestId'] === id, `log line of the replacement for ${bad}`);
      }
      assert.ok(!srv.output().includes('has space'), 'the malformed ID is not logged');
    });

    test('a 404 read is logged at debug (reads are the bulk of traffic); an update at info, with an "update stored" line; no body content is logged', async () => {
      const missing = await request(srv.url).get(`/v2/${G}/_trust/tuf/9.targets.json`);
      assert.equal(missing.status, 404);
      const miss = await find((l) => l['requestId'] === missing.headers['x-request-id'], '404 line');
      assert.equal(miss['level'], 'debug');
      assert.equal(miss['route'], 'byVersion');

      const marker = `secret-payload-${randomBytes(8).toString('hex')}`;
      const targets = newTargets(repo, 2, { [marker]: targetFile(marker) });
      const signature = (JSON.parse(targets.toString()) as { signatures: { sig: string }[] }).signatures[0]!.sig;
      const res = await postWithId(srv.url, G, { targets }, 'ops-log-update');
      assert.equal(res.status, 200, res.text);
      const line = await find((l) => l['requestId'] === 'ops-log-update' && l['msg'] === 'request', 'update request line');
      assert.equal(line['level'], 'info');
      assert.equal(line['method'], 'POST');
      assert.equal(line['route'], 'update');
      assert.equal(line['status'], 200);
      assert.equal(line['gun'], G);
      assert.equal(line['subject'], 'anonymous');
      const stored = await find(
        (l) => l['msg'] === 'update stored' && l['gun'] === G && JSON.stringify(l['stored']).includes('"version":2'),
        'update stored line',
      );
      assert.equal(stored['level'], 'info');
      assert.equal(stored['subject'], 'anonymous');
      assert.deepEqual(stored['stored'], [
        { role: 'targets', version: 2 },
        { role: 'snapshot', version: 2 },
        { role: 'timestamp', version: 2 },
      ]);
      // The file is served, but neither its content nor its signature ever reaches the log.
      assert.equal((await request(srv.url).get(`/v2/${G}/_trust/tuf/targets.json`)).status, 200);
      await find((l) => l['route'] === 'current' && l['path'] === `/v2/${G}/_trust/tuf/targets.json`, 'read line');
      const out = srv.output();
      assert.ok(!out.includes(marker), 'target names are not logged');
      assert.ok(!out.includes(signature), 'signatures are not logged');
      assert.ok(!out.includes(targets.toString('base64').slice(0, 40)), 'bodies are not logged');
    });
  });

  describe('readiness', () => {
    test('GET /_signet/ready answers 200 {} when the database and the server keys are usable', async () => {
      const res = await request(srv.url).get('/_signet/ready');
      assert.equal(res.status, 200);
      assert.equal(res.text, '{}');
      const health = await request(srv.url).get('/_notary_server/health');
      assert.equal(health.status, 200);
      assert.equal(health.text, '{}');
    });
  });

  describe('audit trail', () => {
    const G = 'registry.example.com/ops/audited';
    let repo: TestRepository;
    let records: AuditRecord[];

    before(async () => {
      repo = await createRepository(srv.url, G, { serverSnapshot: true });
      assert.equal((await postWithId(srv.url, G, { targets: newTargets(repo, 2) }, 'audit-update')).status, 200);
      await sleep(20);
      const rotated = await request(srv.url).post(`/v2/${G}/_trust/tuf/timestamp.key`).set('X-Request-Id', 'audit-rotate');
      assert.equal(rotated.status, 200, rotated.text);
      await sleep(20);
      const deleted = await request(srv.url).delete(`/v2/${G}/_trust/tuf/`).set('X-Request-Id', 'audit-delete');
      assert.equal(deleted.status, 200, deleted.text);
    });

    test('GET /_signet/audit?gun= lists update, key rotation and deletion, newest first, with who and from where', async () => {
      const res = await request(srv.url).get('/_signet/audit').query({ gun: G });
      assert.equal(res.status, 200, res.text);
      const body = res.body as { count: number; records: AuditRecord[] };
      records = body.records;
      assert.equal(body.count, 4);
      assert.deepEqual(
        records.map((r) => [r.action, r.requestId]),
        [
          ['delete', 'audit-delete'],
          ['rotate_key', 'audit-rotate'],
          ['update', 'audit-update'],
          ['update', records[3]!.requestId],
        ],
      );
      assert.match(records[3]!.requestId!, UUID, 'the creation carries its generated request ID');
      for (const r of records) {
        assert.equal(r.gun, G);
        assert.equal(r.subject, 'anonymous');
        assert.match(r.address ?? '', /127\.0\.0\.1/);
        assert.ok(!Number.isNaN(Date.parse(r.time)));
      }
      const ids = records.map((r) => BigInt(r.id));
      assert.deepEqual(
        [...ids].sort((a, b) => (a > b ? -1 : 1)),
        ids,
        'newest first',
      );
      assert.deepEqual(records[0]!.detail, { files: 7 }, 'root, 2 targets, 2 snapshots, 2 timestamps');
      assert.equal(records[1]!.detail['role'], 'timestamp');
      assert.match(String(records[1]!.detail['keyId']), /^[0-9a-f]{64}$/);
      assert.deepEqual(records[2]!.detail, {
        roles: [
          { role: 'targets', version: 2 },
          { role: 'snapshot', version: 2 },
          { role: 'timestamp', version: 2 },
        ],
      });
      assert.deepEqual(records[3]!.detail, {
        roles: [
          { role: 'root', version: 1 },
          { role: 'targets', version: 1 },
          { role: 'snapshot', version: 1 },
          { role: 'timestamp', version: 1 },
        ],
      });
      // The same request ID is in the access log.
      const logged = await eventually(() => logLines(srv.output()).find((l) => l['requestId'] === 'audit-delete'), 'log line of the deletion');
      assert.equal(logged['method'], 'DELETE');
    });

    test('since, until and limit select a window', async () => {
      const q = async (query: Record<string, string>) => {
        const res = await request(srv.url)
          .get('/_signet/audit')
          .query({ gun: G, ...query });
        assert.equal(res.status, 200, res.text);
        return (res.body as { records: AuditRecord[] }).records.map((r) => r.action);
      };
      assert.deepEqual(await q({ limit: '1' }), ['delete']);
      assert.deepEqual(await q({ since: records[1]!.time }), ['delete', 'rotate_key']);
      assert.deepEqual(await q({ until: records[1]!.time }), ['update', 'update']);
      assert.deepEqual(await q({ since: records[2]!.time, until: records[0]!.time, limit: '10' }), ['rotate_key', 'update']);
      assert.deepEqual(await q({ since: new Date(Date.now() + 60_000).toISOString() }), []);
      const other = await request(srv.url).get('/_signet/audit').query({ gun: 'registry.example.com/ops/never' });
      assert.deepEqual(other.body, { count: 0, records: [] });
      const all = await request(srv.url).get('/_signet/audit');
      assert.ok(
        (all.body as { records: AuditRecord[] }).records.some((r) => r.gun === 'registry.example.com/ops/metrics'),
        'without gun: every repository',
      );
    });

    test('bad parameters are 400 INVALID_PARAMETERS', async () => {
      for (const query of [{ since: 'yesterday' }, { until: '2026-13-01T00:00:00Z' }, { limit: '0' }, { limit: '1001' }, { limit: 'ten' }, { gun: '' }]) {
        const res = await request(srv.url).get('/_signet/audit').query(query);
        assert.equal(res.status, 400, JSON.stringify(query));
        assert.equal((res.body as { errors: { code: string }[] }).errors[0]!.code, 'INVALID_PARAMETERS', JSON.stringify(query));
      }
    });
  });

  describe('expiring roles report', () => {
    const G = 'registry.example.com/ops/expiring';

    before(async () => {
      await createExpiring(srv.url, G, inDays(10));
    });

    test('GET /_signet/expiring lists targets expiring in 10 days (default window 30 days), not with within=86400', async () => {
      const res = await request(srv.url).get('/_signet/expiring');
      assert.equal(res.status, 200, res.text);
      const body = res.body as { count: number; roles: { gun: string; role: string; version: number; expires: string; expired: boolean }[] };
      assert.equal(body.count, body.roles.length);
      const mine = body.roles.filter((r) => r.gun === G);
      assert.equal(mine.length, 1, res.text);
      assert.equal(mine[0]!.role, 'targets');
      assert.equal(mine[0]!.version, 1);
      assert.equal(mine[0]!.expired, false);
      assert.ok(Math.abs(Date.parse(mine[0]!.expires) - (Date.now() + 10 * 86400_000)) < 120_000, mine[0]!.expires);
      assert.ok(
        body.roles.every((r) => r.gun === G),
        'repositories expiring in years are not listed',
      );

      const day = await request(srv.url).get('/_signet/expiring').query({ within: '86400' });
      assert.deepEqual(day.body, { count: 0, roles: [] });
      const bad = await request(srv.url).get('/_signet/expiring').query({ within: 'soon' });
      assert.equal(bad.status, 400);
      assert.equal((bad.body as { errors: { code: string }[] }).errors[0]!.code, 'INVALID_PARAMETERS');
    });

    test('signet expiring --json exits 1 and lists it; --within 86400 exits 0', { skip: NEEDS_PG }, async () => {
      const [r, day, text] = await Promise.all([
        signet(env, 'expiring', '--json'),
        signet(env, 'expiring', '--within', '86400', '--json'),
        signet(env, 'expiring'),
      ]);
      assert.equal(r.code, 1, r.stderr);
      const roles = json<{ gun: string; role: string }[]>(r, 'expiring');
      assert.deepEqual(
        roles.map((x) => [x.gun, x.role]),
        [[G, 'targets']],
      );
      assert.equal(day.code, 0, day.stderr);
      assert.deepEqual(json(day, 'expiring --within'), []);
      assert.equal(text.code, 1);
      assert.match(text.stdout, new RegExp(`expiring\\t${G}\\ttargets\\tv1\\t`));
      assert.match(text.stdout, /^1 roles expiring in \d+ repositories$/m);
    });
  });

  describe('history', () => {
    const G = 'registry.example.com/ops/history';
    let repo: TestRepository;
    let between: string;

    before(async () => {
      repo = await createRepository(srv.url, G, { serverSnapshot: true });
      await sleep(30);
      assert.equal((await postUpdate(srv.url, G, { targets: newTargets(repo, 2) })).status, 200);
      await sleep(30);
      between = new Date().toISOString();
      await sleep(30);
      assert.equal((await postUpdate(srv.url, G, { targets: newTargets(repo, 3) })).status, 200);
    });

    const at = async (query: Record<string, string>): Promise<RepositoryAt> => {
      const res = await request(srv.url).get(`/_signet/history/${G}`).query(query);
      assert.equal(res.status, 200, res.text);
      return res.body as RepositoryAt;
    };

    test('?timestamp_version=2 gives the roles as they were then, each fetchable by checksum', async () => {
      const v2 = await at({ timestamp_version: '2' });
      assert.equal(v2.gun, G);
      assert.equal(v2.timestamp.version, 2);
      assert.equal(v2.asOf, v2.timestamp.storedAt);
      assert.equal(v2.snapshot?.version, 2);
      assert.deepEqual(
        v2.roles.map((r) => [r.role, r.version]),
        [
          ['root', 1],
          ['targets', 2],
        ],
      );
      for (const f of [v2.timestamp, v2.snapshot!, ...v2.roles]) {
        const { status, body } = await getBytes(`${srv.url}/v2/${G}/_trust/tuf/${f.role}.${f.sha256}.json`);
        assert.equal(status, 200, `${f.role} by checksum`);
        assert.equal(sha256Hex(body), f.sha256);
        assert.equal(body.length, f.length);
        assert.equal((JSON.parse(body.toString()) as { signed: { version: number; expires: string } }).signed.version, f.version);
      }
      const now = await at({});
      assert.equal(now.timestamp.version, 3);
      assert.deepEqual(
        now.roles.map((r) => [r.role, r.version]),
        [
          ['root', 1],
          ['targets', 3],
        ],
      );
    });

    test('?at=<a time between the second and third update> gives the same', async () => {
      const v2 = await at({ timestamp_version: '2' });
      const then = await at({ at: between });
      assert.equal(then.asOf, between);
      assert.deepEqual({ ...then, asOf: '' }, { ...v2, asOf: '' });
      const earlier = await at({ at: new Date(Date.parse(v2.timestamp.storedAt) - 1).toISOString() });
      assert.equal(earlier.timestamp.version, 1);
    });

    test('unknown repository or point → 404; bad parameters → 400', async () => {
      const none = await request(srv.url).get('/_signet/history/registry.example.com/ops/none');
      assert.equal(none.status, 404);
      assert.equal((none.body as { errors: { code: string }[] }).errors[0]!.code, 'METADATA_NOT_FOUND');
      assert.equal((await request(srv.url).get(`/_signet/history/${G}`).query({ timestamp_version: '99' })).status, 404);
      assert.equal((await request(srv.url).get(`/_signet/history/${G}`).query({ at: '2000-01-01T00:00:00Z' })).status, 404);
      for (const query of [{ at: 'last tuesday' }, { timestamp_version: '0' }, { timestamp_version: 'two' }]) {
        const res = await request(srv.url).get(`/_signet/history/${G}`).query(query);
        assert.equal(res.status, 400, JSON.stringify(query));
        assert.equal((res.body as { errors: { code: string }[] }).errors[0]!.code, 'INVALID_PARAMETERS');
      }
    });

    test('signet history GUN --timestamp-version 2 --json equals the API answer', { skip: NEEDS_PG }, async () => {
      const api = await at({ timestamp_version: '2' });
      const [r, byTime, text, missing] = await Promise.all([
        signet(env, 'history', G, '--timestamp-version', '2', '--json'),
        signet(env, 'history', G, '--at', between, '--json'),
        signet(env, 'history', G, '--timestamp-version', '2'),
        signet(env, 'history', G, '--timestamp-version', '99'),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(json(r, 'history'), api);
      assert.equal(byTime.code, 0, byTime.stderr);
      assert.deepEqual(json(byTime, 'history --at'), await at({ at: between }));
      assert.match(text.stdout, new RegExp(`^targets\\s+v2\\s+${api.roles[1]!.sha256}`, 'm'));
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no history of/);
    });
  });

  describe('admin commands', { skip: NEEDS_PG }, () => {
    const G = 'registry.example.com/ops/admin';
    let repo: TestRepository;

    before(async () => {
      repo = await createRepository(srv.url, G, { serverSnapshot: true });
      assert.equal((await postUpdate(srv.url, G, { targets: newTargets(repo, 2) })).status, 200);
    });

    test('repos list --json: every repository with its file count and last change', async () => {
      const [r, text] = await Promise.all([signet(env, 'repos', 'list', '--json'), signet(env, 'repos', 'list')]);
      assert.equal(r.code, 0, r.stderr);
      const repos = json<{ gun: string; files: number; lastChange: string }[]>(r, 'repos list');
      const mine = repos.find((x) => x.gun === G);
      assert.deepEqual(mine && { ...mine, lastChange: '' }, { gun: G, files: 7, lastChange: '' }, 'root, 2 targets, 2 snapshots, 2 timestamps');
      assert.ok(Math.abs(Date.parse(mine!.lastChange) - Date.now()) < 60_000);
      assert.deepEqual(
        repos.map((x) => x.gun),
        [...repos.map((x) => x.gun)].sort(),
        'sorted by name',
      );
      assert.ok(!repos.some((x) => x.gun === 'registry.example.com/ops/audited'), 'deleted repositories are gone');
      assert.match(text.stdout, new RegExp(`^${G}\\t7 files\\tlast change `, 'm'));
    });

    test('repos show GUN --json: current roles, versions and expiries, server keys', async () => {
      const r = await signet(env, 'repos', 'show', G, '--json');
      assert.equal(r.code, 0, r.stderr);
      const shown = json<{
        gun: string;
        files: { role: string; version: number; expires: string; expired: boolean }[];
        keys: { keyId: string; role: string; inCurrentRoot: boolean; lastUsed: string | null }[];
      }>(r, 'repos show');
      assert.equal(shown.gun, G);
      assert.deepEqual(
        shown.files.map((f) => [f.role, f.version, f.expired]),
        [
          ['timestamp', 2, false],
          ['snapshot', 2, false],
          ['root', 1, false],
          ['targets', 2, false],
        ],
      );
      assert.deepEqual(shown.keys.map((k) => [k.role, k.keyId, k.inCurrentRoot]).sort(), [
        ['snapshot', repo.snapshotKey.keyId, true],
        ['timestamp', repo.timestampKey.keyId, true],
      ]);
      assert.ok(shown.keys.every((k) => k.lastUsed !== null));
    });

    test('keys list --json [--gun]: server-held keys', async () => {
      const [r, everything] = await Promise.all([signet(env, 'keys', 'list', '--gun', G, '--json'), signet(env, 'keys', 'list', '--json')]);
      assert.equal(r.code, 0, r.stderr);
      const keys = json<{ keyId: string; gun: string; role: string; keytype: string; lastUsed: string | null }[]>(r, 'keys list');
      assert.deepEqual(keys.map((k) => [k.gun, k.role, k.keyId, k.keytype]).sort(), [
        [G, 'snapshot', repo.snapshotKey.keyId, 'ed25519'],
        [G, 'timestamp', repo.timestampKey.keyId, 'ed25519'],
      ]);
      const all = json<{ gun: string }[]>(everything, 'keys list');
      assert.ok(new Set(all.map((k) => k.gun)).size > 1, 'without --gun: every repository');
    });

    test('keys rotate GUN timestamp: a pending key; GET timestamp.key keeps answering the listed key until a root lists the new one', async () => {
      const r = await signet(env, 'keys', 'rotate', G, 'timestamp', '--json');
      assert.equal(r.code, 0, r.stderr);
      const pending = json<{ keyId: string; keytype: string; publicKey: string }>(r, 'keys rotate');
      assert.notEqual(pending.keyId, repo.timestampKey.keyId);
      // Asking again hands out the same pending key, from the CLI and over HTTP.
      assert.equal(json<{ keyId: string }>(await signet(env, 'keys', 'rotate', G, 'timestamp', '--json'), 'again').keyId, pending.keyId);
      assert.equal((await fetchServerKey(srv.url, G, 'timestamp', 'post')).keyId, pending.keyId);
      // Clients still get (and timestamps are still signed with) the key the current root lists.
      assert.equal((await fetchServerKey(srv.url, G, 'timestamp')).keyId, repo.timestampKey.keyId);
      const listed = json<{ keyId: string; role: string; lastUsed: string | null }[]>(await signet(env, 'keys', 'list', '--gun', G, '--json'), 'keys list');
      assert.equal(listed.find((k) => k.keyId === pending.keyId)?.lastUsed, null, 'pending');

      // The owner publishes a root listing it (what `notary key rotate GUN timestamp -r` does).
      const newKey = await fetchServerKey(srv.url, G, 'timestamp', 'post');
      const root = signFile(rootDoc({ ...repo.rootSpec, version: 2, timestamp: [newKey] }), [repo.rootKey]);
      const published = await postUpdate(srv.url, G, { root });
      assert.equal(published.status, 200, published.text);
      assert.equal((await fetchServerKey(srv.url, G, 'timestamp')).keyId, pending.keyId, 'now the listed key');
      const ts = await getBytes(`${srv.url}/v2/${G}/_trust/tuf/timestamp.json`);
      assert.deepEqual(
        (JSON.parse(ts.body.toString()) as { signatures: { keyid: string }[] }).signatures.map((s) => s.keyid),
        [pending.keyId],
      );
      const shown = json<{ keys: { keyId: string; inCurrentRoot: boolean }[] }>(await signet(env, 'repos', 'show', G, '--json'), 'repos show');
      assert.equal(shown.keys.find((k) => k.keyId === pending.keyId)?.inCurrentRoot, true);
      assert.equal(shown.keys.find((k) => k.keyId === repo.timestampKey.keyId)?.inCurrentRoot, false);
      const text = await signet(env, 'keys', 'rotate', G, 'snapshot');
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /notary key rotate .* snapshot -r/);
    });

    test('changefeed tail --records 2 --json: the newest records, oldest first, one JSON object a line', async () => {
      const r = await signet(env, 'changefeed', 'tail', '--records', '2', '--json');
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { ID: string; GUN: string; Version: number; Category: string });
      assert.equal(lines.length, 2);
      const api = await request(srv.url).get('/v2/_trust/changefeed').query({ change_id: '-1', records: '-2' });
      assert.deepEqual(lines, (api.body as { records: unknown[] }).records);
      assert.deepEqual(
        lines.map((l) => [l.GUN, l.Version, l.Category]),
        [
          [G, 2, 'update'],
          [G, 3, 'update'],
        ],
      );
      const mine = await signet(env, 'changefeed', 'tail', '--gun', G, '--records', '10', '--json');
      assert.deepEqual(
        mine.stdout
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { Version: number }).Version),
        [1, 2, 3],
      );
    });

    test('audit --gun GUN --json: the same records as the API, CLI actions attributed to cli:<user>', async () => {
      const r = await signet({ ...env, USER: 'ops-admin' }, 'audit', '--gun', G, '--json');
      assert.equal(r.code, 0, r.stderr);
      const cli = json<AuditRecord[]>(r, 'audit');
      const api = (await request(srv.url).get('/_signet/audit').query({ gun: G })).body as { records: AuditRecord[] };
      assert.deepEqual(cli, api.records);
      // Newest first: the CLI's snapshot rotation, the root listing the new timestamp key, two
      // POST timestamp.key, two CLI timestamp rotations, the targets update, the creation.
      assert.deepEqual(
        cli.map((x) => x.action),
        ['rotate_key', 'update', 'rotate_key', 'rotate_key', 'rotate_key', 'rotate_key', 'update', 'update'],
      );
      assert.equal(cli.filter((x) => x.action === 'rotate_key' && /^cli:/.test(x.subject)).length, 3, 'three rotations asked from the command line');
      const limited = json<AuditRecord[]>(await signet(env, 'audit', '--gun', G, '--limit', '1', '--since', cli[2]!.time, '--json'), 'audit --limit');
      assert.deepEqual(
        limited.map((x) => x.id),
        [cli[0]!.id],
      );
    });

    test('repos delete GUN --yes; then its metadata is 404 (keys stay)', async () => {
      const noYes = await signet(env, 'repos', 'delete', G);
      assert.equal(noYes.code, 2, 'without --yes and without a terminal');
      assert.match(noYes.stderr, /--yes/);
      assert.equal((await request(srv.url).get(`/v2/${G}/_trust/tuf/root.json`)).status, 200, 'still there');
      const r = await signet(env, 'repos', 'delete', G, '--yes');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^deleted \\d+ files of ${G}$`, 'm'));
      // The serving process hears of the deletion through the database's change notifications.
      await eventually(
        async () => ((await request(srv.url).get(`/v2/${G}/_trust/tuf/root.json`)).status === 404 ? true : undefined),
        'root.json 404 after delete',
        3000,
      );
      assert.equal((await request(srv.url).get(`/v2/${G}/_trust/tuf/timestamp.json`)).status, 404);
      const again = await signet(env, 'repos', 'delete', G, '--yes');
      assert.equal(again.code, 1);
      assert.match(again.stdout, /no repository/);
      const keys = json<unknown[]>(await signet(env, 'keys', 'list', '--gun', G, '--json'), 'keys after delete');
      assert.ok(keys.length >= 2, 'server keys are kept');
      const shown = await signet(env, 'repos', 'show', G);
      assert.equal(shown.code, 1);
    });
  });

  describe('admin command errors', () => {
    const usage: [string[], RegExp][] = [
      [['keys', 'rotate'], /keys rotate: missing GUN/],
      [['keys', 'rotate', 'registry.example.com/x', 'targets'], /role must be timestamp or snapshot/],
      [['history'], /history: missing GUN/],
      [['audit', '--since', 'yesterday'], /--since must be an RFC 3339 time/],
      [['audit', '--limit'], /--limit needs a value/],
    ];

    // Each command opens the store first; the embedded one takes seconds per command to open.
    test('usage errors exit 2 with a message; an unknown repository exits 1', { skip: NEEDS_PG }, async () => {
      const results = await Promise.all([...usage.map(([args]) => signet(env, ...args)), signet(env, 'repos', 'show', 'nope')]);
      usage.forEach(([args, message], i) => {
        const r = results[i]!;
        assert.equal(r.code, 2, `signet ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message, `signet ${args.join(' ')}`);
      });
      const nope = results.at(-1)!;
      assert.equal(nope.code, 1, nope.stderr);
      assert.match(nope.stderr, /no repository nope/);
    });

    test('usage errors are reported as such (exit 2) even when the database is unreachable', async () => {
      // Nothing listens on port 1: a command that opened the database before reading its
      // arguments would fail with a connection error (exit 1) instead of naming the mistake.
      const unreachable = { DATABASE_URL: 'postgres://signet@127.0.0.1:1/none', SIGNET_DATA_DIR: db.dataDir };
      const cases = usage.filter(([args]) => args[0] !== 'keys' || args.length === 2);
      const results = await Promise.all(cases.map(([args]) => signet(unreachable, ...args)));
      const wrong = cases
        .map(([args, message], i) => ({ args, message, r: results[i]! }))
        .filter(({ message, r }) => r.code !== 2 || !message.test(r.stderr))
        .map(({ args, r }) => `signet ${args.join(' ')} → exit ${r.code}: ${r.stderr.trim()}`);
      assert.deepEqual(wrong, [], 'usage errors must not depend on the database');
    });
  });

  describe('graceful shutdown', () => {
    const G = 'registry.example.com/ops/shutdown';
    let repo: TestRepository;

    before(async () => {
      repo = await createRepository(srv.url, G, { serverSnapshot: true });
    });

    test('SIGTERM during a slow upload: the upload completes, new connections are refused, the process exits 0 soon after', async () => {
      const { body, contentType } = multipartBody({ targets: newTargets(repo, 2) });
      const url = new URL(srv.url);
      // Clients keep connections alive (Go's notary client and docker idle them for 90 s).
      const agent = new http.Agent({ keepAlive: true, timeout: 60_000 });
      const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
        srv.child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
      );
      const half = Math.floor(body.length / 2);
      let termAt = 0;
      let answeredAt = 0;
      try {
        const answer = await new Promise<{ status: number; text: string; connection: string | undefined }>((resolve, reject) => {
          const req = http.request(
            {
              host: url.hostname,
              port: url.port,
              method: 'POST',
              path: `/v2/${G}/_trust/tuf/`,
              agent,
              headers: { 'Content-Type': contentType, 'Content-Length': body.length },
            },
            (res) => {
              let text = '';
              res.on('data', (c: Buffer) => (text += c.toString()));
              res.on('end', () => {
                answeredAt = Date.now();
                resolve({ status: res.statusCode ?? 0, text, connection: res.headers.connection });
              });
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.write(body.subarray(0, half));
          setTimeout(() => {
            termAt = Date.now();
            srv.child.kill('SIGTERM');
            setTimeout(() => {
              // The listener is closed: a new connection is refused while the upload is in flight.
              const probe = http.get({ host: url.hostname, port: url.port, path: '/v2/', agent: false });
              probe.on('response', (r) => {
                r.resume();
                reject(new Error(`a new connection was answered ${r.statusCode} after SIGTERM`));
              });
              probe.on('error', (e: NodeJS.ErrnoException) => {
                if (e.code !== 'ECONNREFUSED') return reject(e);
                req.end(body.subarray(half));
              });
            }, 500);
          }, 300);
        });
        assert.equal(answer.status, 200, answer.text);
        const exit = await Promise.race([exited, sleep(8000).then(() => null)]);
        const log = srv.output().slice(-2000);
        if (!exit) {
          srv.child.kill('SIGKILL');
          await exited;
        }
        console.log(
          `# shutdown: upload answered ${answeredAt - termAt} ms after SIGTERM (Connection: ${answer.connection}); ` +
            (exit ? `process exited ${exit.at - termAt} ms after SIGTERM` : 'process still running 8 s later'),
        );
        assert.ok(exit, `the process did not exit within 8 s of SIGTERM (the answered connection is kept alive):\n${log}`);
        assert.equal(exit.code, 0, `exit code (signal ${exit.signal})`);
        assert.ok(exit.at - answeredAt < 3000, `exited ${exit.at - answeredAt} ms after the last answer`);
        assert.ok(
          logLines(srv.output()).some((l) => l['msg'] === 'shutting down' && l['signal'] === 'SIGTERM'),
          'shutdown is logged',
        );
      } finally {
        agent.destroy();
        if (srv.child.exitCode === null && srv.child.signalCode === null) {
          srv.child.kill('SIGKILL');
          await exited;
        }
      }
    });

    test('the upload was stored; another key-encryption key is refused at start; keys re-encrypted under a running server make it not ready (503 Key access)', async () => {
      await assert.rejects(startTestServer({ SIGNET_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex') }, db), /is not the key-encryption key of this store/);
      const same = await startTestServer({ SIGNET_KEY_ENCRYPTION_KEY: kek }, db);
      try {
        const targets = await getBytes(`${same.url}/v2/${G}/_trust/tuf/targets.json`);
        assert.equal(targets.status, 200);
        assert.equal((JSON.parse(targets.body.toString()) as { signed: { version: number } }).signed.version, 2, 'the upload in flight at SIGTERM was stored');
        assert.equal((await request(same.url).get('/_signet/ready')).status, 200);
        // Re-keyed while it runs: it still holds the old key-encryption key.
        const current = loadKeyEncryptionKey(same.config.SIGNET_KEY_ENCRYPTION_KEY, same.config.SIGNET_DATA_DIR);
        await rekeyServerKeys(same.context.database, { current, next: new KeyEncryptionKey(randomBytes(32)) });
        const ready = await request(same.url).get('/_signet/ready');
        assert.equal(ready.status, 503, ready.text);
        const problems = JSON.parse(ready.text) as Record<string, string>;
        assert.deepEqual(Object.keys(problems), ['Key access']);
        assert.match(problems['Key access']!, /another key-encryption key/);
        assert.equal((await request(same.url).get('/_notary_server/health')).status, 200, 'health is about the database only');
        // A new repository's keys would be created under the old key: refused cleanly.
        const refused = await request(same.url).get('/v2/registry.example.com/ops/after-rekey/_trust/tuf/timestamp.key');
        assert.ok(refused.status >= 500 && refused.status < 600, `${refused.status} ${refused.text}`);
        assert.equal(
          Number(
            (
              await same.context.database.db
                .selectFrom('server_keys')
                .select((eb) => eb.fn.countAll<string>().as('n'))
                .where('gun', '=', 'registry.example.com/ops/after-rekey')
                .executeTakeFirstOrThrow()
            ).n,
          ),
          0,
        );
      } finally {
        await same.close();
      }
    });
  });
});

// ---- token auth ----

describe('audit trail with token authentication', { timeout: 60_000 }, () => {
  const SERVICE = 'signet.ops';
  const ISSUER = 'signet-ops-issuer';
  const G = 'localhost:5000/ops/tokened';
  let work: string;
  let tokens: RunningTokenService;
  let server: TestServer;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-ops-auth-'));
    tokens = await startDevTokenService({
      issuer: ISSUER,
      service: SERVICE,
      users: [{ name: 'alice', password: 'alice-pw', repositories: ['localhost:5000/ops/'], actions: ['*'] }],
    });
    const bundle = path.join(work, 'tokens.pem');
    writeFileSync(bundle, tokens.certificatePem);
    server = await startTestServer({
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: tokens.realm,
      SIGNET_AUTH_SERVICE: SERVICE,
      SIGNET_AUTH_ISSUER: ISSUER,
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
    });
  });

  after(async () => {
    await server?.close();
    await tokens?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function token(scope: string, user = 'alice:alice-pw'): Promise<string> {
    const url = new URL(tokens.realm);
    url.searchParams.set('service', SERVICE);
    url.searchParams.set('scope', scope);
    const res = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from(user).toString('base64')}` } });
    assert.equal(res.status, 200);
    return ((await res.json()) as { token: string }).token;
  }

  test('changes are attributed to the token’s subject; reading the trail needs registry:catalog:*', async () => {
    const push = await token(`repository:${G}:push,pull`);
    const key = await request(server.url).get(`/v2/${G}/_trust/tuf/timestamp.key`).set('Authorization', `Bearer ${push}`);
    assert.equal(key.status, 200, key.text);
    const timestampKey = JSON.parse(key.text) as { keytype: string; keyval: { public: string } };
    const rootKey = certKey({ commonName: G });
    const targetsKey = ecdsaKey();
    const snapshotKey = ecdsaKey();
    const root = signFile(rootDoc({ root: [rootKey], targets: [targetsKey], snapshot: [snapshotKey], timestamp: [serverKey(timestampKey)] }), [rootKey]);
    const targets = signFile(targetsDoc({}), [targetsKey]);
    const snapshot = signFile(snapshotDoc({ files: { root, targets } }), [snapshotKey]);
    const { body, contentType } = multipartBody({ root, targets, snapshot });
    const created = await request(server.url)
      .post(`/v2/${G}/_trust/tuf/`)
      .set('Authorization', `Bearer ${push}`)
      .set('Content-Type', contentType)
      .set('X-Request-Id', 'tok-create')
      .send(body);
    assert.equal(created.status, 200, created.text);
    const rotated = await request(server.url)
      .post(`/v2/${G}/_trust/tuf/snapshot.key`)
      .set('Authorization', `Bearer ${await token(`repository:${G}:*`)}`);
    assert.equal(rotated.status, 200, rotated.text);

    // No token: the catalog challenge.
    const anonymous = await request(server.url).get('/_signet/audit').query({ gun: G });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers['www-authenticate'], `Bearer realm="${tokens.realm}",service="${SERVICE}",scope="registry:catalog:*"`);
    // A token for the repository itself is not enough.
    const repoOnly = await request(server.url)
      .get('/_signet/audit')
      .query({ gun: G })
      .set('Authorization', `Bearer ${await token(`repository:${G}:*`)}`);
    assert.equal(repoOnly.status, 401);
    assert.match(repoOnly.headers['www-authenticate'] ?? '', /scope="registry:catalog:\*",error="insufficient_scope"/);

    const res = await request(server.url)
      .get('/_signet/audit')
      .query({ gun: G })
      .set('Authorization', `Bearer ${await token('registry:catalog:*')}`);
    assert.equal(res.status, 200, res.text);
    const records = (res.body as { records: AuditRecord[] }).records;
    assert.deepEqual(
      records.map((r) => [r.action, r.subject]),
      [
        ['rotate_key', 'alice'],
        ['update', 'alice'],
      ],
    );
    assert.equal(records[1]!.requestId, 'tok-create');
    assert.deepEqual(records[0]!.detail['role'], 'snapshot');
  });
});

// ---- expiry watch ----

describe('expiry watch', { timeout: 60_000 }, () => {
  const G = 'registry.example.com/ops/watched';
  let db: TestDatabase;
  let server: TestServer | undefined;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await server?.close();
    await db?.drop();
  });

  test('re-signs a timestamp ahead of its expiry with no client request, and reports expiring roles as a gauge', async () => {
    // Published by a server whose timestamps live one minute, with targets expiring in 10 days.
    const first = await startTestServer({ SIGNET_TIMESTAMP_EXPIRY: '60' }, db);
    try {
      await createExpiring(first.url, G, inDays(10));
    } finally {
      await first.close();
    }
    // The next server re-signs timestamps expiring within 3500 s, for 3600 s.
    server = await startTestServer({ SIGNET_EXPIRY_SCAN_INTERVAL: '1', SIGNET_TIMESTAMP_EXPIRY: '3600', SIGNET_RESIGN_BEFORE: '3500' }, db);
    const started = Date.now();
    const dbx = server.context.database.db;
    const timestamps = async () =>
      (await dbx.selectFrom('tuf_files').select(['version', 'data']).where('gun', '=', G).where('role', '=', 'timestamp').orderBy('version').execute()).map(
        (r) => ({
          version: r.version,
          expires: Date.parse((JSON.parse(Buffer.from(r.data).toString()) as { signed: { expires: string } }).signed.expires),
        }),
      );
    assert.deepEqual(
      (await timestamps()).map((t) => t.version),
      [1],
    );
    const resigned = await eventually(
      async () => {
        const ts = await timestamps();
        return ts.length > 1 ? ts : undefined;
      },
      'a re-signed timestamp',
      15_000,
    );
    console.log(`# expiry watch: timestamp re-signed ${Date.now() - started} ms after start, without a client request`);
    assert.equal(resigned[1]!.version, 2);
    assert.ok(Math.abs(resigned[1]!.expires - (Date.now() + 3600_000)) < 60_000, 'for SIGNET_TIMESTAMP_EXPIRY');
    const served = await getBytes(`${server.url}/v2/${G}/_trust/tuf/timestamp.json`);
    assert.equal((JSON.parse(served.body.toString()) as { signed: { version: number } }).signed.version, 2, 'served');

    const metrics = await eventually(async () => {
      const m = (await request(server!.url).get('/metrics')).text;
      return sample(m, 'signet_roles_expiring', { role: 'targets' }) !== undefined ? m : undefined;
    }, 'signet_roles_expiring');
    assert.equal(sample(metrics, 'signet_roles_expiring', { role: 'targets' }), 1);
    assert.equal(sample(metrics, 'signet_roles_expired', { role: 'targets' }), 0);
    assert.equal(sample(metrics, 'signet_signing_operations_total', { role: 'timestamp' }), 1);

    // Once fresh, it is left alone: further scans do not sign again.
    await sleep(2500);
    assert.deepEqual(
      (await timestamps()).map((t) => t.version),
      [1, 2],
    );
    const feed = await request(server.url).get(`/v2/${G}/_trust/changefeed`).query({ change_id: '0', records: '10' });
    assert.deepEqual(
      (feed.body as { records: { Version: number }[] }).records.map((r) => r.Version),
      [1, 2],
      'the re-signed timestamp is in the changefeed',
    );
  });
});
