/**
 * The real `notary` CLI (Debian package `notary` 0.7) drives a repository's whole life against a
 * Signet process: ../shared/anchor/notary-e2e.sh, over http and over https with a throwaway CA.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDevTokenService } from '../../src/auth/dev-token-service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { sharedDir } from '../support/paths.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { makeTestTls } from '../support/tls.js';

const script = path.join(sharedDir, 'anchor', 'notary-e2e.sh');
const haveNotary = spawnSync('sh', ['-c', 'command -v notary']).status === 0;
// In CI the CLI is installed by .ci/run, so its absence is a failure there, not a skip.
const skip = !haveNotary && !process.env['CI'] ? 'notary CLI not installed (apt-get install notary)' : false;

function runScript(url: string, ca?: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [script, url, ...(ca ? [ca] : [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('real notary CLI against Signet', { skip, timeout: 300_000 }, () => {
  let db: TestDatabase;
  const servers: ServerProcess[] = [];

  before(async () => {
    assert.ok(existsSync(script), `missing ${script}`);
    db = await createTestDatabase();
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await db?.drop();
  });

  const env = () => ({ SIGNET_DATA_DIR: db.dataDir, ...(db.url ? { DATABASE_URL: db.url } : {}) });

  test('over http: 19 of 19 steps pass', async () => {
    const server = await spawnServer(env());
    servers.push(server);
    const { code, out } = await runScript(server.url);
    assert.equal(code, 0, out + '\n--- server log ---\n' + server.output().slice(-3000));
    assert.match(out, /^19 passed, 0 failed$/m);
    await server.stop();
  });

  test('over https with a throwaway CA: 19 of 19 steps pass', async () => {
    const tls = makeTestTls();
    try {
      const server = await spawnServer({ ...env(), SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: tls.key });
      servers.push(server);
      assert.match(server.url, /^https:/);
      const { code, out } = await runScript(server.url, tls.caCert);
      assert.equal(code, 0, out + '\n--- server log ---\n' + server.output().slice(-3000));
      assert.match(out, /^19 passed, 0 failed$/m);
      await server.stop();
    } finally {
      rmSync(tls.dir, { recursive: true, force: true });
    }
  });

  test('over https with registry token auth (NOTARY_AUTH): 19 of 19 steps pass', async () => {
    const tls = makeTestTls();
    const tokens = await startDevTokenService({
      issuer: 'signet-e2e',
      service: 'signet-e2e',
      users: [{ name: 'ci', password: 'ci-pass', repositories: ['localhost:5000/e2e/'], actions: ['*'] }],
    });
    try {
      const bundle = path.join(tls.dir, 'token-ca.pem');
      writeFileSync(bundle, tokens.certificatePem);
      const server = await spawnServer({
        ...env(),
        SIGNET_TLS_CERT: tls.cert,
        SIGNET_TLS_KEY: tls.key,
        SIGNET_AUTH: 'token',
        SIGNET_AUTH_REALM: tokens.realm,
        SIGNET_AUTH_SERVICE: 'signet-e2e',
        SIGNET_AUTH_ISSUER: 'signet-e2e',
        SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
      });
      servers.push(server);
      const { code, out } = await runScript(server.url, tls.caCert, { NOTARY_AUTH: Buffer.from('ci:ci-pass').toString('base64') });
      assert.equal(code, 0, out + '\n--- server log ---\n' + server.output().slice(-3000));
      assert.match(out, /^19 passed, 0 failed$/m);
      // Without credentials the same client is refused.
      const anonymous = await runScript(server.url, tls.caCert, { NOTARY_AUTH: '' });
      assert.notEqual(anonymous.code, 0);
      assert.match(anonymous.out, /FAIL init/);
      await server.stop();
    } finally {
      await tokens.close();
      rmSync(tls.dir, { recursive: true, force: true });
    }
  });
});
