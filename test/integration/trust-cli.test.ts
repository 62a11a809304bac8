/**
 * `signet trust` and `signet verify` given bad input, against a real Signet server and a real
 * registry: malformed image references, unknown registries, wrong or missing passphrases,
 * missing keys, unusable key files, a trust server that is down or answers garbage. Each must
 * end with one line naming the problem and exit 1 (refused) or 2 (usage or configuration),
 * never a stack trace, and leave the trust directory as it was.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDevTokenService, type RunningTokenService } from '../../src/auth/dev-token-service.js';
import { runSignet, type CliResult } from '../support/cli.js';
import { startRegistry, type PushedImage, type TestRegistry } from '../support/registry.js';
import { startTestServer, type TestServer } from '../support/server.js';

const PASS = { DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'cli-root-pass', DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'cli-repo-pass' };

/** Every file under `dir` with its sha256: what "left as it was" compares. */
function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out[path.relative(dir, full)] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

function oneLineFailure(r: CliResult, exit: 1 | 2, pattern: RegExp): void {
  assert.equal(r.code, exit, `exit ${exit} expected:\n${r.stdout}${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:/, 'no stack trace');
}

describe('signet trust: bad input', { timeout: 120_000 }, () => {
  let server: TestServer;
  let registry: TestRegistry;
  let pushed: PushedImage;
  let home: string;
  let garbage: http.Server;
  let garbageUrl: string;

  const env = (extra: Record<string, string> = {}) => ({ DOCKER_CONFIG: home, DOCKER_CONTENT_TRUST_SERVER: server.url, CI: 'true', ...PASS, ...extra });
  const signet = (args: string[], extra: Record<string, string> = {}) => runSignet(args, env(extra));
  const repo = () => `${registry.host}/cli/app`;

  before(async () => {
    server = await startTestServer();
    registry = await startRegistry();
    pushed = await registry.pushImage('cli/app', 'v1');
    home = mkdtempSync(path.join(os.tmpdir(), 'signet-trust-cli-'));
    garbage = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    garbageUrl = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`;
    // A repository with signer alice, signed once: the baseline the failures must not disturb.
    assert.equal((await signet(['trust', 'key', 'generate', 'alice', '--dir', home])).code, 0);
    assert.equal((await signet(['trust', 'signer', 'add', '--key', path.join(home, 'alice.pub'), 'alice', repo()])).code, 0);
    const signed = await signet(['trust', 'sign', `${repo()}:v1`]);
    assert.equal(signed.code, 0, signed.stderr);
  });
  after(async () => {
    await server?.close();
    await registry?.stop();
    await new Promise<void>((r) => (garbage ? garbage.close(() => r()) : r()));
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /**
   * The keys must be left exactly as they were, and no file half-written anywhere (the cached
   * metadata may be refreshed with verified files: that is what a read does).
   */
  const unchanged = async (run: () => Promise<CliResult>): Promise<CliResult> => {
    const before = snapshotDir(path.join(home, 'trust', 'private'));
    const r = await run();
    assert.deepEqual(snapshotDir(path.join(home, 'trust', 'private')), before, 'the keys must be left as they were');
    const all = Object.keys(snapshotDir(path.join(home, 'trust')));
    assert.deepEqual(
      all.filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary files left behind',
    );
    for (const f of all.filter((f) => f.startsWith('tuf/'))) JSON.parse(readFileSync(path.join(home, 'trust', f), 'utf8'));
    return r;
  };

  test('malformed image references: exit 2 naming the reference', async () => {
    for (const ref of ['UPPER/App:v1', 'registry.example.com/app:bad tag', 'app@sha256:1234', '']) {
      const r = await unchanged(() => signet(['verify', ref]));
      oneLineFailure(r, 2, /invalid image reference/);
    }
    oneLineFailure(await unchanged(() => signet(['trust', 'sign', `${registry.host}/cli/app`])), 2, /IMAGE:TAG/);
  });

  test('an unknown registry: exit 1 naming it', async () => {
    const r = await unchanged(() => signet(['trust', 'sign', 'no-such-registry.invalid/cli/app:v1']));
    oneLineFailure(r, 1, /no-such-registry\.invalid/);
  });

  test('a tag the registry does not have: exit 1 naming it', async () => {
    oneLineFailure(await unchanged(() => signet(['trust', 'sign', `${repo()}:nope`])), 1, /cli\/app:nope/);
  });

  test('a wrong passphrase: exit 1 naming the key, nothing written', async () => {
    const r = await unchanged(() =>
      signet(['trust', 'sign', `${repo()}:v1`, '--digest', pushed.digest, '--size', String(pushed.size)], {
        DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'not-the-passphrase',
      }),
    );
    oneLineFailure(r, 1, /passphrase/i);
    assert.doesNotMatch(r.stderr, /not-the-passphrase/, 'never echo a passphrase');
  });

  test('no passphrase and no terminal: exit 2 naming the variables', async () => {
    const r = await unchanged(() =>
      runSignet(['trust', 'sign', `${repo()}:v1`], { DOCKER_CONFIG: home, DOCKER_CONTENT_TRUST_SERVER: server.url, CI: 'true' }, { isolated: true }),
    );
    oneLineFailure(r, 2, /DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE/);
  });

  test('no key that can sign: exit 1', async () => {
    const other = mkdtempSync(path.join(os.tmpdir(), 'signet-trust-cli-other-'));
    try {
      const r = await runSignet(['trust', 'sign', `${repo()}:v1`], { ...env(), DOCKER_CONFIG: other });
      oneLineFailure(r, 1, /no key .* can sign/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  test('unusable key files: exit 2', async () => {
    const bad = path.join(home, 'garbage.pub');
    writeFileSync(bad, 'not a key\n');
    oneLineFailure(await unchanged(() => signet(['trust', 'signer', 'add', '--key', bad, 'bob', repo()])), 2, /garbage\.pub|public key/);
    oneLineFailure(await unchanged(() => signet(['trust', 'signer', 'add', '--key', path.join(home, 'missing.pub'), 'bob', repo()])), 2, /missing\.pub/);
    oneLineFailure(await unchanged(() => signet(['trust', 'key', 'load', bad, '--name', 'bob'])), 2, /garbage\.pub/);
    oneLineFailure(await unchanged(() => signet(['trust', 'key', 'generate', 'Not A Name', '--dir', home])), 2, /signer name/);
  });

  test('a trust server that is down or answers garbage: exit 1 naming it', async () => {
    const fresh = mkdtempSync(path.join(os.tmpdir(), 'signet-trust-cli-fresh-'));
    try {
      const down = await runSignet(['verify', `${repo()}:v1`], { ...env(), DOCKER_CONFIG: fresh, DOCKER_CONTENT_TRUST_SERVER: 'http://127.0.0.1:9' });
      oneLineFailure(down, 1, /127\.0\.0\.1:9/);
      const junk = await runSignet(['verify', `${repo()}:v1`], { ...env(), DOCKER_CONFIG: fresh, DOCKER_CONTENT_TRUST_SERVER: garbageUrl });
      oneLineFailure(junk, 1, /root/);
      assert.deepEqual(snapshotDir(path.join(fresh, 'trust')), {}, 'nothing trusted from a garbage server');
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  test('usage mistakes: exit 2 with where to read on', async () => {
    oneLineFailure(await signet(['verify', `${repo()}:v1`, '--signer', 'alice', '--threshold', '2']), 2, /--threshold/);
    oneLineFailure(await signet(['trust', 'frobnicate']), 2, /unknown command/);
    oneLineFailure(await signet(['trust', 'sign', `${repo()}:v1`, '--digest', pushed.digest]), 2, /--digest and --size/);
    oneLineFailure(await signet(['trust', 'key', 'rotate', repo(), 'root']), 2, /ROLE/);
  });

  test('--json errors carry the stable code', async () => {
    const r = await signet(['verify', `${repo()}:nope`, '--json']);
    assert.equal(r.code, 1);
    assert.deepEqual(Object.keys(JSON.parse(r.stdout) as object), ['error']);
    assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'NO_SUCH_TARGET');
  });

  test('every command has --help', async () => {
    for (const args of [
      ['trust'],
      ['trust', 'key', 'generate'],
      ['trust', 'key', 'load'],
      ['trust', 'key', 'rotate'],
      ['trust', 'signer', 'add'],
      ['trust', 'signer', 'remove'],
      ['trust', 'sign'],
      ['trust', 'revoke'],
      ['trust', 'inspect'],
      ['verify'],
    ]) {
      const r = await signet([...args, '--help']);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^usage: signet /);
    }
  });

  test('several tags in one command: each resolved from the registry, one publish', async () => {
    const v2 = await registry.pushImage('cli/app', 'v2');
    const v3 = await registry.pushImage('cli/app', 'v3', { oci: true });
    const r = await signet(['trust', 'sign', `${repo()}:v2`, `${repo()}:v3`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const results = JSON.parse(r.stdout) as { tag: string; digest: string }[];
    assert.deepEqual(
      results.map((x) => [x.tag, x.digest]),
      [
        ['v2', v2.digest],
        ['v3', v3.digest],
      ],
    );
    assert.equal(r.stderr, '', 'no progress output outside a terminal');
    const inspected = JSON.parse((await signet(['trust', 'inspect', repo()])).stdout) as { SignedTags: { SignedTag: string; Digest: string }[] }[];
    assert.deepEqual(
      inspected[0]!.SignedTags.map((t) => t.SignedTag),
      ['v1', 'v2', 'v3'],
    );
  });

  test('the baseline still verifies after all of it', async () => {
    const r = await signet(['verify', `${repo()}:v1`, '--signer', 'alice']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(pushed.digest));
  });
});

describe('signet trust behind registry token auth', { timeout: 120_000 }, () => {
  let tokens: RunningTokenService;
  let server: TestServer;
  let registry: TestRegistry;
  let pushed: PushedImage;
  let work: string;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-trust-auth-'));
    tokens = await startDevTokenService({
      issuer: 'signet-cli-issuer',
      service: 'signet-cli',
      users: [{ name: 'ci', password: 'ci-pass', repositories: [''], actions: ['pull', 'push'] }],
    });
    const bundle = path.join(work, 'token-ca.pem');
    writeFileSync(bundle, tokens.certificatePem);
    server = await startTestServer({
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: tokens.realm,
      SIGNET_AUTH_SERVICE: 'signet-cli',
      SIGNET_AUTH_ISSUER: 'signet-cli-issuer',
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
    });
    registry = await startRegistry();
    pushed = await registry.pushImage('auth/app', 'v1');
  });
  after(async () => {
    await server?.close();
    await tokens?.close();
    await registry?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A user whose config.json holds `auth` for the image's registry (the trust server asks for those). */
  function user(name: string, auth?: string): Record<string, string> {
    const dir = path.join(work, name);
    mkdirSync(dir, { recursive: true });
    if (auth) writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(auth).toString('base64') } } }));
    return { DOCKER_CONFIG: dir, DOCKER_CONTENT_TRUST_SERVER: server.url, CI: 'true', ...PASS };
  }

  test('the registry credentials get a token for the trust server: sign and verify work', async () => {
    const ci = user('ci', 'ci:ci-pass');
    const image = `${registry.host}/auth/app`;
    assert.equal((await runSignet(['trust', 'key', 'generate', 'ci', '--dir', ci['DOCKER_CONFIG']!], ci)).code, 0);
    const signed = await runSignet(['trust', 'sign', `${image}:v1`, '--signer', 'ci'], ci);
    assert.equal(signed.code, 0, signed.stderr);
    const verified = await runSignet(['verify', `${image}:v1`, '--signer', 'ci'], user('reader', 'ci:ci-pass'));
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, new RegExp(pushed.digest));
  });

  test('no credentials or wrong ones: exit 1, UNAUTHORIZED in one line', async () => {
    const image = `${registry.host}/auth/app:v1`;
    oneLineFailure(await runSignet(['verify', image], user('anonymous')), 1, /requires credentials|refused|unauthori/i);
    const wrong = await runSignet(['verify', image, '--json'], user('wrong', 'ci:not-the-password'));
    assert.equal(wrong.code, 1);
    assert.match((JSON.parse(wrong.stdout) as { error: { code: string } }).error.code, /UNAUTHORIZED/);
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /not-the-password/);
  });
});
