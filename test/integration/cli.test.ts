/**
 * The `signet` command line as operators meet it: --help and --version on every command with no
 * side effects, usage mistakes (unknown options, extra arguments) refused with exit 2, commands
 * that refuse wrong input instead of succeeding silently, and `signet config` showing the
 * configuration in effect.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { configReference } from '../../src/cli/config-reference.js';
import { createRepository, postUpdate, type TestRepository } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { signet, type CliResult } from '../support/import-cli.js';
import { projectRoot } from '../support/paths.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { ecdsaKey, signFile, targetFile, targetsDoc } from '../support/tuf-kit.js';

const VERSION = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** Every command and subcommand, as typed after `signet`. */
const COMMANDS = [
  ['serve'],
  ['migrate'],
  ['check'],
  ['config'],
  ['import'],
  ['dev-token-service'],
  ['repos'],
  ['repos', 'list'],
  ['repos', 'show'],
  ['repos', 'delete'],
  ['keys'],
  ['keys', 'list'],
  ['keys', 'rotate'],
  ['changefeed'],
  ['changefeed', 'tail'],
  ['audit'],
  ['expiring'],
  ['history'],
];

const scratch = mkdtempSync(path.join(os.tmpdir(), 'signet-cli-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * An environment in which doing anything but printing would show: the data directory does not
 * exist (opening the embedded store or the key file would create it), the configuration is
 * invalid (loading it would fail) and the database is unreachable.
 */
function untouchable(): { env: Record<string, string>; dataDir: string } {
  const dataDir = path.join(mkdtempSync(path.join(scratch, 'env-')), 'data');
  return { dataDir, env: { SIGNET_DATA_DIR: dataDir, SIGNET_PORT: 'abc', DATABASE_URL: 'postgres://signet@127.0.0.1:1/none' } };
}

const show = (args: string[], r: CliResult) => `signet ${args.join(' ')} → exit ${r.code}\n${r.stdout}${r.stderr}`;

describe('--help and --version', () => {
  test('every command and subcommand prints its usage on stdout with --help and -h, exit 0, touching nothing', async () => {
    const { env, dataDir } = untouchable();
    const runs = COMMANDS.flatMap((c) => [
      [...c, '--help'],
      [...c, '-h'],
    ]);
    const results = await Promise.all(runs.map((args) => signet(args, env)));
    runs.forEach((args, i) => {
      const r = results[i]!;
      const words = args.slice(0, -1);
      assert.equal(r.code, 0, show(args, r));
      assert.equal(r.stderr, '', show(args, r));
      assert.ok(r.stdout.startsWith(`usage: signet ${words.join(' ')}`), show(args, r));
    });
    assert.equal(existsSync(dataDir), false, 'no data directory was created');
  });

  test('--help wins over other mistakes on the same command line', async () => {
    const { env } = untouchable();
    const r = await signet(['audit', '--bogus', 'extra', '--help'], env);
    assert.equal(r.code, 0, show(['audit', '--bogus', 'extra', '--help'], r));
    assert.match(r.stdout, /^usage: signet audit /);
  });

  test('signet --help, -h and help list every command; help COMMAND is COMMAND --help', async () => {
    const { env } = untouchable();
    const [long, short, word, helpCheck] = await Promise.all([
      signet(['--help'], env),
      signet(['-h'], env),
      signet(['help'], env),
      signet(['help', 'check'], env),
    ]);
    for (const r of [long, short, word]) {
      assert.equal(r.code, 0, r.stderr);
      for (const c of ['serve', 'migrate', 'check', 'config', 'import', 'dev-token-service', 'repos', 'keys', 'changefeed', 'audit', 'expiring', 'history']) {
        assert.match(r.stdout, new RegExp(`^ {2}${c}\\b`, 'm'), c);
      }
    }
    assert.equal(helpCheck.code, 0);
    assert.match(helpCheck.stdout, /^usage: signet check /);
  });

  test('--version prints the version of package.json, for signet and for every command', async () => {
    const { env, dataDir } = untouchable();
    const runs = [['--version'], ...COMMANDS.map((c) => [...c, '--version'])];
    const results = await Promise.all(runs.map((args) => signet(args, env)));
    runs.forEach((args, i) => {
      const r = results[i]!;
      assert.equal(r.code, 0, show(args, r));
      assert.equal(r.stdout, `signet ${VERSION}\n`, show(args, r));
    });
    assert.equal(existsSync(dataDir), false);
  });
});

describe('usage errors', () => {
  test('an unknown option is exit 2, named, with a pointer to --help, on every command', async () => {
    const { env, dataDir } = untouchable();
    const results = await Promise.all(COMMANDS.map((c) => signet([...c, '--bogus'], env)));
    COMMANDS.forEach((c, i) => {
      const r = results[i]!;
      assert.equal(r.code, 2, show([...c, '--bogus'], r));
      assert.match(r.stderr, /unknown option --bogus/, show([...c, '--bogus'], r));
      assert.ok(r.stderr.includes(`see \`signet ${c.join(' ')} --help\``), show([...c, '--bogus'], r));
      assert.doesNotMatch(r.stderr, /needs a value/);
    });
    assert.equal(existsSync(dataDir), false);
  });

  test('extra arguments are exit 2 and named; several mistakes make one message', async () => {
    const { env } = untouchable();
    const cases: [string[], RegExp][] = [
      [['serve', 'now'], /^signet serve: unexpected argument "now"; see `signet serve --help`$/],
      [['migrate', 'up'], /unexpected argument "up"/],
      [['check', 'x'], /unexpected argument "x"/],
      [['config', 'show'], /unexpected argument "show"/],
      [['repos', 'list', 'x', 'y'], /unexpected arguments "x" "y"/],
      [['repos', 'show', 'a/b', 'c'], /unexpected argument "c"/],
      [['keys', 'rotate', 'a/b', 'timestamp', 'now'], /unexpected argument "now"/],
      [['history', 'a/b', 'c'], /unexpected argument "c"/],
      [['history', 'a/b', '--at', '2026-01-01T00:00:00Z', '--timestamp-version', '2'], /give either --at or --timestamp-version, not both/],
      [['keys', 'rekey'], /--new-key-file is required/],
      [['import', '--from', 'postgres://x/y', 'z'], /unexpected argument "z"/],
      [['dev-token-service', 'x'], /unexpected argument "x"/],
      [
        ['audit', '--bogus', '--json=yes', 'extra'],
        /^signet audit: unknown option --bogus; --json takes no value; unexpected argument "extra"; see `signet audit --help`$/,
      ],
      [['repos', 'frob'], /unknown subcommand "frob", expected one of list, show, delete/],
      [['--bogus'], /^signet: unknown option --bogus; see `signet --help`$/],
      [['frob'], /^signet: unknown command "frob"; see `signet --help`$/],
      [['dev-token-service', '--port', 'x'], /--port must be a port number/],
      [['dev-token-service', '--user', 'nobody'], /user must be name:password/],
    ];
    const results = await Promise.all(cases.map(([args]) => signet(args, env)));
    cases.forEach(([args, message], i) => {
      const r = results[i]!;
      assert.equal(r.code, 2, show(args, r));
      assert.match(r.stderr.trim(), message, show(args, r));
    });
  });

  test('audit --limit is checked as GET /_signet/audit checks it (1 to 1000), before any database is opened', async () => {
    const { env, dataDir } = untouchable();
    const bad = ['0', '-5', '1001', 'ten', '1.5'];
    const results = await Promise.all(bad.map((n) => signet(['audit', '--limit', n], env)));
    bad.forEach((n, i) => {
      const r = results[i]!;
      assert.equal(r.code, 2, show(['audit', '--limit', n], r));
      assert.match(r.stderr, /--limit must be a whole number from 1 to 1000/, n);
    });
    assert.equal(existsSync(dataDir), false);
    const srv = await startTestServer();
    try {
      for (const n of bad) {
        const res = await request(srv.url).get('/_signet/audit').query({ limit: n });
        assert.equal(res.status, 400, n);
        assert.match(
          (res.body as { errors: { message: string; detail: unknown }[] }).errors[0]!.detail as string,
          /limit: must be a whole number from 1 to 1000/,
          n,
        );
      }
    } finally {
      await srv.close();
    }
  });
});

describe('signet config', () => {
  test('shows the values in effect and their source (env, file, default), secrets redacted', async () => {
    const file = path.join(scratch, 'signet.json');
    writeFileSync(file, JSON.stringify({ SIGNET_PORT: 8443, SIGNET_LOG_LEVEL: 'warn', DATABASE_URL: 'postgres://signet:file-secret@db.internal:5432/signet' }));
    const kek = 'ab'.repeat(32);
    const env = { SIGNET_CONFIG: file, SIGNET_LOG_LEVEL: 'debug', SIGNET_KEY_ENCRYPTION_KEY: kek, SIGNET_HOST: '' };
    const [text, asJson] = await Promise.all([signet(['config'], env), signet(['config', '--json'], env)]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(asJson.code, 0, asJson.stderr);
    const shown = JSON.parse(asJson.stdout) as { file: string; settings: Record<string, { value: unknown; source: string }> };
    assert.equal(shown.file, file);
    assert.deepEqual(shown.settings['SIGNET_PORT'], { value: 8443, source: 'file' });
    assert.deepEqual(shown.settings['SIGNET_LOG_LEVEL'], { value: 'debug', source: 'env' }, 'the environment wins over the file');
    assert.deepEqual(shown.settings['SIGNET_HOST'], { value: '127.0.0.1', source: 'default' }, 'an empty variable is unset');
    assert.deepEqual(shown.settings['SIGNET_TLS_CERT'], { value: null, source: 'default' });
    assert.deepEqual(shown.settings['SIGNET_KEY_ENCRYPTION_KEY'], { value: '(redacted)', source: 'env' });
    assert.deepEqual(shown.settings['DATABASE_URL'], { value: 'postgres://signet:***@db.internal:5432/signet', source: 'file' });
    for (const out of [text.stdout, asJson.stdout]) {
      assert.ok(!out.includes(kek) && !out.includes('file-secret'), 'no secret is printed');
    }
    assert.match(text.stdout, /^file {4}SIGNET_PORT=8443$/m);
    assert.match(text.stdout, /^env {5}SIGNET_LOG_LEVEL=debug$/m);
    assert.match(text.stdout, /^default SIGNET_HOST=127\.0\.0\.1$/m);
    assert.match(text.stdout, /^default SIGNET_TLS_CERT \(unset\)$/m);
  });

  test('a password in a DATABASE_URL query is redacted too', async () => {
    const r = await signet(['config', '--json'], { DATABASE_URL: 'postgres://db.internal/signet?user=signet&password=q-secret' });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('q-secret'));
    assert.match(r.stdout, /password=\*\*\*/);
  });

  test('an invalid configuration is reported as the server reports it, exit 2', async () => {
    const { env } = untouchable();
    const [config, serve] = await Promise.all([signet(['config'], env), signet(['serve'], env)]);
    assert.equal(config.code, 2, config.stdout + config.stderr);
    assert.match(config.stderr, /^SIGNET_PORT: "abc" is not a port number \(expected an integer 0-65535\)$/m);
    assert.equal(config.stderr, serve.stderr);
  });

  test('--markdown is the reference table, whatever the configuration', async () => {
    const { env } = untouchable();
    const r = await signet(['config', '--markdown'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${configReference()}\n`);
  });
});

describe('commands refuse what does not exist', { timeout: 120_000 }, () => {
  const G = 'registry.example.com/cli/delegated';
  let db: TestDatabase;
  let env: Record<string, string>;
  let repo: TestRepository;

  before(async () => {
    db = await createTestDatabase();
    env = { SIGNET_DATA_DIR: db.dataDir, ...(db.url ? { DATABASE_URL: db.url } : {}) };
    // Publish in this process, then stop: the embedded store serves one process at a time.
    const srv: TestServer = await startTestServer({}, db);
    try {
      repo = await createRepository(srv.url, G, { serverSnapshot: true });
      const releasesKey = ecdsaKey();
      const delegating = signFile(targetsDoc({ version: 2, delegations: [{ name: 'targets/releases', keys: [releasesKey] }] }), [repo.targetsKey]);
      const releases = signFile(targetsDoc({ targets: { v1: targetFile('v1') } }), [releasesKey]);
      const added = await postUpdate(srv.url, G, { targets: delegating, 'targets/releases': releases });
      assert.equal(added.status, 200, added.text);
      // `notary delegation remove` + publish: a targets without the delegation, nothing else.
      const removed = await postUpdate(srv.url, G, { targets: signFile(targetsDoc({ version: 3 }), [repo.targetsKey]) });
      assert.equal(removed.status, 200, removed.text);
      // Over HTTP a key may still be had for a repository not yet published (notary init does).
      const early = await request(srv.url).post('/v2/registry.example.com/cli/not-yet/_trust/tuf/timestamp.key');
      assert.equal(early.status, 200, early.text);
    } finally {
      await srv.close();
    }
  });

  after(async () => {
    await db?.drop();
  });

  test('keys rotate of a repository that does not exist exits 1 and creates no key', async () => {
    const r = await signet(['keys', 'rotate', 'nope/x', 'timestamp'], env);
    assert.equal(r.code, 1, show(['keys', 'rotate', 'nope/x', 'timestamp'], r));
    assert.match(r.stderr, /no repository nope\/x/);
    const keys = await signet(['keys', 'list', '--gun', 'nope/x', '--json'], env);
    assert.equal(keys.code, 0, keys.stderr);
    assert.deepEqual(JSON.parse(keys.stdout), []);
  });

  test('check --gun of a repository that does not exist reports it and exits 1', async () => {
    const r = await signet(['check', '--gun', 'nope/x', '--json'], env);
    assert.equal(r.code, 1, show(['check', '--gun', 'nope/x'], r));
    const report = JSON.parse(r.stdout) as { errors: number; problems: { gun: string; message: string }[] };
    assert.equal(report.errors, 1);
    assert.equal(report.problems[0]!.gun, 'nope/x');
    assert.match(report.problems[0]!.message, /no such repository/);
    const sound = await signet(['check', '--gun', G], env);
    assert.equal(sound.code, 0, sound.stdout + sound.stderr);
    assert.match(sound.stdout, /1 repositories, \d+ files checked: 0 errors/);
  });

  test('repos show lists only the delegations the current targets still delegate', async () => {
    const r = await signet(['repos', 'show', G, '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { files: { role: string; version: number }[] };
    assert.deepEqual(
      shown.files.map((f) => [f.role, f.version]),
      [
        ['timestamp', 3],
        ['snapshot', 3],
        ['root', 1],
        ['targets', 3],
      ],
    );
  });
});
