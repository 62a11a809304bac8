/**
 * `docker trust` end to end against Signet over HTTPS, without and with registry token auth:
 * a real registry (Debian `docker-registry`) holds the image, the anchor's stand-in engine
 * answers the docker CLI, and test/e2e/docker-trust.sh drives key generate, signer add, sign
 * (two signers), inspect, revoke and signer remove.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDevTokenService, type RunningTokenService } from '../../src/auth/dev-token-service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { projectRoot, sharedDir } from '../support/paths.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { makeTestTls, type TestTls } from '../support/tls.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = ['docker', 'docker-registry', 'python3'].filter((c) => !has(c));
const skip = missing.length > 0 && !process.env['CI'] ? `missing ${missing.join(', ')}` : false;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start`);
}

describe('docker trust against Signet', { skip, timeout: 600_000 }, () => {
  let work: string;
  let db: TestDatabase;
  let tls: TestTls;
  let registryUrl: string;
  let socket: string;
  const children: ChildProcess[] = [];
  const servers: ServerProcess[] = [];
  let tokens: RunningTokenService | undefined;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-docker-'));
    db = await createTestDatabase();
    tls = makeTestTls();
    const port = await freePort();
    registryUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      path.join(work, 'registry.yml'),
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${work}/registry\nhttp:\n  addr: 127.0.0.1:${port}\nlog:\n  level: error\n`,
    );
    const registry = spawn('docker-registry', ['serve', path.join(work, 'registry.yml')], { stdio: 'ignore' });
    children.push(registry);
    await waitFor(async () => (await fetch(`${registryUrl}/v2/`)).ok, 'registry');
    for (const repo of ['demo/plain', 'demo/tokens']) {
      const push = await run('python3', [path.join(sharedDir, 'anchor', 'push-image.py'), registryUrl, repo, 'v1']);
      assert.equal(push.code, 0, push.out);
    }
    socket = path.join(work, 'docker.sock');
    const engine = spawn(process.execPath, [path.join(sharedDir, 'anchor', 'fake-engine.mjs'), socket, registryUrl], { stdio: 'ignore' });
    children.push(engine);
    await waitFor(
      () =>
        new Promise((resolve) => {
          const c = net
            .connect(socket, () => {
              c.end();
              resolve(true);
            })
            .on('error', () => resolve(false));
        }),
      'stand-in engine',
    );
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await tokens?.close();
    for (const c of children) c.kill();
    await db?.drop();
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const script = path.join(projectRoot, 'test', 'e2e', 'docker-trust.sh');
  const baseEnv = () => ({ SIGNET_DATA_DIR: db.dataDir, SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: tls.key, ...(db.url ? { DATABASE_URL: db.url } : {}) });
  // A registry host that is not loopback, so docker really verifies the trust server's TLS.
  const image = (repo: string) => `${new URL(registryUrl).host.replace('127.0.0.1', 'registry.signet.test')}/${repo}`;

  test('every docker trust command works over HTTPS without auth', async () => {
    const server = await spawnServer(baseEnv());
    servers.push(server);
    const { code, out } = await run('bash', [script, server.url, tls.caCert, socket, image('demo/plain')]);
    assert.equal(code, 0, out + '\n--- server log ---\n' + server.output().slice(-3000));
    assert.match(out, /^12 passed, 0 failed$/m);
    await server.stop();
  });

  test('every docker trust command works over HTTPS with token auth, and anonymous access is refused', async () => {
    tokens = await startDevTokenService({
      issuer: 'signet-test-issuer',
      service: 'signet-test',
      users: [
        { name: 'admin', password: 'admin-pass', repositories: [''], actions: ['*'] },
        { name: 'bob', password: 'bob-pass', repositories: [''], actions: ['pull', 'push'] },
      ],
    });
    const bundle = path.join(work, 'token-ca.pem');
    writeFileSync(bundle, tokens.certificatePem);
    const server = await spawnServer({
      ...baseEnv(),
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: tokens.realm,
      SIGNET_AUTH_SERVICE: 'signet-test',
      SIGNET_AUTH_ISSUER: 'signet-test-issuer',
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
    });
    servers.push(server);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const { code, out } = await run('bash', [script, server.url, tls.caCert, socket, image('demo/tokens'), b64('admin:admin-pass'), b64('bob:bob-pass')]);
    assert.equal(code, 0, out + '\n--- server log ---\n' + server.output().slice(-3000));
    assert.match(out, /^13 passed, 0 failed$/m);
    await server.stop();
  });
});
