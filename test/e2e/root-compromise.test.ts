/**
 * The root-key-compromise runbook of docs/operations.md, followed once with the real `notary`
 * CLI against a Signet process. The owner publishes v1; an attacker copies the private keys of
 * the owner's trust directory; the owner rotates the root, targets, snapshot (to the server)
 * and timestamp keys and publishes v2. The attacker, still holding the old root, targets and
 * snapshot keys, then tries a new root, new targets and a new snapshot: each is refused, nothing
 * is stored, and fresh clients still see and verify v2.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { tufKeyId } from '../../src/tuf/core/keys.js';
import { postUpdate } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { projectRoot } from '../support/paths.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { certKey, selfSignedCertificate, signatureFor, signFile, snapshotDoc, targetFile, targetsDoc, rootDoc, type TestKey } from '../support/tuf-kit.js';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';

const haveNotary = spawnSync('sh', ['-c', 'command -v notary']).status === 0;
// In CI the CLI is installed by .ci/run, so its absence is a failure there, not a skip.
const skip = !haveNotary && !process.env['CI'] ? 'notary CLI not installed (apt-get install notary)' : false;

const PASSPHRASES = { root: 'root-pass', targets: 'targets-pass', snapshot: 'snapshot-pass' } as const;
const GUN = `localhost:5000/runbook/app-${randomBytes(4).toString('hex')}`;

interface Signed<T> {
  signed: T;
  signatures: { keyid: string; method: string; sig: string }[];
}
interface RootSigned {
  version: number;
  keys: Record<string, { keytype: string; keyval: { public: string } }>;
  roles: Record<string, { keyids: string[]; threshold: number }>;
}

describe('root key compromise runbook, with the notary CLI', { skip, timeout: 300_000 }, () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let work: string;
  const trust = () => path.join(work, 'trust');
  /** The attacker's copy of the owner's keys, taken after v1. */
  const stolen = new Map<string, { keyId: string; privateKey: KeyObject }>();
  let rootV1: RootSigned;

  function notary(args: string[], opts: { dir?: string; input?: string } = {}): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve) => {
      const child = spawn('notary', ['-d', opts.dir ?? trust(), '-s', server.url, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          ...process.env,
          NOTARY_ROOT_PASSPHRASE: PASSPHRASES.root,
          NOTARY_TARGETS_PASSPHRASE: PASSPHRASES.targets,
          NOTARY_SNAPSHOT_PASSPHRASE: PASSPHRASES.snapshot,
        },
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.stdin.end(opts.input ?? '');
      child.on('exit', (code) => resolve({ code, out }));
    });
  }

  async function step(n: string, what: string, args: string[], input?: string): Promise<string> {
    console.log(`# runbook ${n}: ${input ? `echo ${input.trim()} | ` : ''}notary ${args.join(' ')}  (${what})`);
    const r = await notary(args, input === undefined ? {} : { input });
    assert.equal(r.code, 0, `${what}:\n${r.out}\n--- server log ---\n${server.output().slice(-2000)}`);
    return r.out;
  }

  async function current<T>(role: string): Promise<Signed<T>> {
    const res = await fetch(`${server.url}/v2/${GUN}/_trust/tuf/${role}.json`);
    assert.equal(res.status, 200, `${role}.json`);
    return (await res.json()) as Signed<T>;
  }

  /** What the server has stored: row counts (Postgres) and what clients can fetch (any store). */
  async function storeState(): Promise<unknown> {
    const versions: Record<string, number> = {};
    for (const role of ['root', 'targets', 'snapshot', 'timestamp']) versions[role] = (await current<{ version: number }>(role)).signed.version;
    const feed = await fetch(`${server.url}/v2/${GUN}/_trust/changefeed?change_id=0&records=1000`);
    const count = ((await feed.json()) as { count: number }).count;
    const next = await fetch(`${server.url}/v2/${GUN}/_trust/tuf/${versions['root']! + 1}.root.json`);
    const nextTargets = await fetch(`${server.url}/v2/${GUN}/_trust/tuf/${versions['targets']! + 1}.targets.json`);
    const rows: Record<string, number> = {};
    if (db.url) {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        for (const table of ['tuf_files', 'changefeed', 'server_keys', 'audit_log']) {
          rows[table] = Number((await client.query(`select count(*) as n from ${table}`)).rows[0].n);
        }
      } finally {
        await client.end();
      }
    }
    if (db.url) assert.ok((rows['tuf_files'] ?? 0) > 0 && (rows['audit_log'] ?? 0) > 0, JSON.stringify(rows));
    return { versions, changefeed: count, nextRoot: next.status, nextTargets: nextTargets.status, rows };
  }

  function assertRefused(res: { status: number; body: { errors?: { code: string; detail?: unknown }[] }; text: string }, name: string, message: RegExp): void {
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.errors?.[0]?.code, 'INVALID_UPDATE', res.text);
    const detail = res.body.errors?.[0]?.detail as { Name?: string; Error?: { Msg?: string } } | undefined;
    assert.equal(detail?.Name, name, res.text);
    assert.match(detail?.Error?.Msg ?? '', message, res.text);
  }

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-runbook-'));
    writeFileSync(path.join(work, 'v1.txt'), 'release one\n');
    writeFileSync(path.join(work, 'v2.txt'), 'release two\n');
    db = await createTestDatabase();
    server = await spawnServer({ SIGNET_DATA_DIR: db.dataDir, DATABASE_URL: db.url ?? '', SIGNET_LOG_LEVEL: 'warn' });
  });

  after(async () => {
    await server?.stop();
    await db?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the owner creates the repository and publishes v1', async () => {
    await step('0', 'create the repository', ['init', GUN, '-p']);
    await step('0', 'publish v1', ['add', GUN, 'v1', path.join(work, 'v1.txt'), '-p']);
    assert.match((await notary(['list', GUN])).out, /^v1\s/m);
    rootV1 = (await current<RootSigned>('root')).signed;
  });

  test('the attacker copies the trust directory’s private keys (encrypted PKCS#8 PEM with a role header)', () => {
    const copy = path.join(work, 'attacker');
    cpSync(trust(), copy, { recursive: true });
    for (const file of readdirSync(path.join(copy, 'private'))) {
      const text = readFileSync(path.join(copy, 'private', file), 'utf8');
      assert.match(text, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
      const role = /^role: (\S+)$/m.exec(text)?.[1] as keyof typeof PASSPHRASES;
      assert.ok(role in PASSPHRASES, `role header of ${file}`);
      // Notary writes `role:` and `gun:` headers inside the PEM block; OpenSSL wants them gone.
      const pem = text.replace(/^(?:role|gun): .*\n/gm, '').replace(/-----\n\n/, '-----\n');
      const privateKey = createPrivateKey({ key: pem, format: 'pem', passphrase: PASSPHRASES[role] });
      stolen.set(role, { keyId: file.replace(/\.key$/, ''), privateKey });
    }
    assert.deepEqual([...stolen.keys()].sort(), ['root', 'snapshot', 'targets']);
    // The file names are the TUF key IDs of the public keys (targets and snapshot are listed as such).
    for (const role of ['targets', 'snapshot'] as const) {
      const k = stolen.get(role)!;
      const spki = createPublicKey(k.privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
      assert.equal(tufKeyId('ecdsa', spki), k.keyId, role);
      assert.deepEqual(rootV1.roles[role]!.keyids, [k.keyId], `${role} key listed in root v1`);
    }
    // The root key is listed as an x509 certificate of the same key.
    const rootCertId = rootV1.roles['root']!.keyids[0]!;
    const cert = new X509Certificate(Buffer.from(rootV1.keys[rootCertId]!.keyval.public, 'base64'));
    assert.deepEqual(
      cert.publicKey.export({ type: 'spki', format: 'der' }),
      createPublicKey(stolen.get('root')!.privateKey).export({ type: 'spki', format: 'der' }),
    );
  });

  test('the owner follows the runbook: rotate root, targets, snapshot and timestamp keys, publish v2', async () => {
    const previous = (await current<RootSigned>('root')).signed;
    await step('1/5', 'new root key; the new root is signed by the old and the new key', ['key', 'rotate', GUN, 'root'], 'yes\n');
    await step('2/5', 'new targets key', ['key', 'rotate', GUN, 'targets']);
    await step('3/5', 'snapshot key to the server', ['key', 'rotate', GUN, 'snapshot', '-r']);
    await step('4/5', 'new timestamp key on the server', ['key', 'rotate', GUN, 'timestamp', '-r']);
    await step('5/5', 'publish v2 with the new keys', ['add', GUN, 'v2', path.join(work, 'v2.txt'), '-p']);

    const root = (await current<RootSigned>('root')).signed;
    assert.equal(root.version, previous.version + 4, 'one root version per rotation');
    for (const role of ['root', 'targets', 'snapshot', 'timestamp']) {
      for (const old of previous.roles[role]!.keyids) assert.ok(!root.roles[role]!.keyids.includes(old), `old ${role} key no longer listed`);
    }
    const snapshotKey = (await (await fetch(`${server.url}/v2/${GUN}/_trust/tuf/snapshot.key`)).json()) as { keyval: { public: string } };
    assert.equal(root.keys[root.roles['snapshot']!.keyids[0]!]!.keyval.public, snapshotKey.keyval.public, 'the server holds the snapshot key');
    assert.match((await notary(['list', GUN])).out, /^v2\s/m);
  });

  describe('the attacker, with the old root, targets and snapshot keys', () => {
    let root: Signed<RootSigned>;
    let rootBytes: Buffer;
    let state: unknown;

    before(async () => {
      root = await current<RootSigned>('root');
      rootBytes = Buffer.from(await (await fetch(`${server.url}/v2/${GUN}/_trust/tuf/root.json`)).arrayBuffer());
      state = await storeState();
    });

    test('a new root signed with the old root key (and keys of the attacker’s choosing) → 400 ErrBadRoot', async () => {
      const old = stolen.get('root')!.privateKey;
      // Certificates the attacker makes, with the repository's name, for a key of their own and
      // for the stolen root key.
      const mine = certKey({ commonName: GUN });
      const oldPem = selfSignedCertificate(old, createPublicKey(old), { commonName: GUN });
      const oldAsCert = certKeyFrom(oldPem, old);
      const oldTargets = plainKey(stolen.get('targets')!.privateKey);
      const oldSnapshot = plainKey(stolen.get('snapshot')!.privateKey);
      const timestampId = root.signed.roles['timestamp']!.keyids[0]!;
      const timestamp: TestKey = {
        keytype: root.signed.keys[timestampId]!.keytype,
        publicB64: root.signed.keys[timestampId]!.keyval.public,
        keyId: timestampId,
        privateKey: null,
      };
      const doc = rootDoc({
        version: root.signed.version + 1,
        root: [mine, oldAsCert],
        targets: [oldTargets],
        snapshot: [oldSnapshot],
        timestamp: [timestamp],
      });
      // Signed by both certificates, and by the old root key under its listing in root v1.
      const v1Id = rootV1.roles['root']!.keyids[0]!;
      const v1Cert: TestKey = { keytype: 'ecdsa-x509', publicB64: rootV1.keys[v1Id]!.keyval.public, keyId: v1Id, privateKey: old };
      const forgedRoot = signFile(doc, [mine, oldAsCert], [signatureFor(v1Cert, canonicalJson(doc))]);
      const targets = signFile(targetsDoc({ version: 100, targets: { v666: targetFile('malware') } }), [oldTargets]);
      const snapshot = signFile(snapshotDoc({ version: 100, files: { root: forgedRoot, targets } }), [oldSnapshot]);
      assertRefused(await postUpdate(server.url, GUN, { root: forgedRoot, targets, snapshot }), 'ErrBadRoot', /not signed by 1 of the current root's keys/);
      // And a root signed with nothing but the old root key.
      const onlyOld = signFile(doc, [v1Cert]);
      assertRefused(await postUpdate(server.url, GUN, { root: onlyOld }), 'ErrBadRoot', /current trusted certificates/);
      assert.deepEqual(await storeState(), state, 'nothing stored');
    });

    test('new targets signed with the old targets key → 400 ErrBadTargets', async () => {
      const oldTargets = plainKey(stolen.get('targets')!.privateKey);
      const version = (await current<{ version: number }>('targets')).signed.version + 1;
      const targets = signFile(targetsDoc({ version, targets: { v2: targetFile('malware'), v666: targetFile('malware') } }), [oldTargets]);
      assertRefused(await postUpdate(server.url, GUN, { targets }), 'ErrBadTargets', /valid signatures/);
      const snapshot = signFile(snapshotDoc({ version: 100, files: { root: rootBytes, targets } }), [plainKey(stolen.get('snapshot')!.privateKey)]);
      assertRefused(await postUpdate(server.url, GUN, { targets, snapshot }), 'ErrBadTargets', /valid signatures/);
      assert.deepEqual(await storeState(), state, 'nothing stored');
    });

    test('a new snapshot signed with the old snapshot key → 400 ErrBadSnapshot', async () => {
      const targetsBytes = Buffer.from(await (await fetch(`${server.url}/v2/${GUN}/_trust/tuf/targets.json`)).arrayBuffer());
      const version = (await current<{ version: number }>('snapshot')).signed.version + 1;
      const snapshot = signFile(snapshotDoc({ version, files: { root: rootBytes, targets: targetsBytes } }), [plainKey(stolen.get('snapshot')!.privateKey)]);
      assertRefused(await postUpdate(server.url, GUN, { snapshot }), 'ErrBadSnapshot', /valid signatures/);
      assert.deepEqual(await storeState(), state, 'nothing stored');
    });
  });

  test('fresh clients, and clients that trusted the old root, list v2 and verify it', async () => {
    const fresh = path.join(work, 'fresh');
    const listed = await notary(['list', GUN], { dir: fresh });
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, /^v2\s/m);
    assert.doesNotMatch(listed.out, /v666/);
    const verified = spawnSync('sh', ['-c', `notary -d "$1" -s "$2" verify "$3" v2 < "$4"`, 'sh', fresh, server.url, GUN, path.join(work, 'v2.txt')], {
      encoding: 'utf8',
    });
    assert.equal(verified.status, 0, verified.stderr);
    assert.equal(verified.stdout, 'release two\n', 'verify passes the payload through');
    const tampered = spawnSync('sh', ['-c', `echo tampered | notary -d "$1" -s "$2" verify "$3" v2`, 'sh', fresh, server.url, GUN], { encoding: 'utf8' });
    assert.notEqual(tampered.status, 0, 'a different payload does not verify');
    // The attacker's copy of the trust directory is also a client that trusted root v1.
    const stale = await notary(['list', GUN], { dir: path.join(work, 'attacker') });
    assert.equal(stale.code, 0, stale.out);
    assert.match(stale.out, /^v2\s/m);
    console.log('# runbook: attacks refused (ErrBadRoot, ErrBadTargets, ErrBadSnapshot), nothing stored; fresh and old clients list and verify v2');
  });

  // `signet` shares the server's database: with the embedded store only one process may open it.
  test(
    'a server-held key compromised: signet keys rotate, then the owner publishes a root listing the new key',
    { skip: process.env['TEST_DATABASE_URL'] ? false : 'needs TEST_DATABASE_URL' },
    async () => {
      const env = { ...process.env, DATABASE_URL: db.url!, SIGNET_DATA_DIR: db.dataDir };
      console.log(`# server key runbook 1/2: signet keys rotate ${GUN} timestamp`);
      const rotated = spawnSync(process.execPath, [path.join(projectRoot, 'dist', 'src', 'cli', 'main.js'), 'keys', 'rotate', GUN, 'timestamp', '--json'], {
        env,
        encoding: 'utf8',
      });
      assert.equal(rotated.status, 0, rotated.stderr);
      const pending = JSON.parse(rotated.stdout) as { keyId: string };
      const listed = (await current<RootSigned>('root')).signed;
      assert.ok(!listed.roles['timestamp']!.keyids.includes(pending.keyId), 'not in effect yet');
      await step('server key 2/2', 'the owner publishes a root listing the new server key', ['key', 'rotate', GUN, 'timestamp', '-r']);
      const root = (await current<RootSigned>('root')).signed;
      assert.deepEqual(root.roles['timestamp']!.keyids, [pending.keyId], 'the root lists the key signet created');
      const timestamp = await current<unknown>('timestamp');
      assert.deepEqual(
        timestamp.signatures.map((sig) => sig.keyid),
        [pending.keyId],
        'timestamps are signed with it',
      );
      const shown = spawnSync(process.execPath, [path.join(projectRoot, 'dist', 'src', 'cli', 'main.js'), 'repos', 'show', GUN, '--json'], {
        env,
        encoding: 'utf8',
      });
      const keys = (JSON.parse(shown.stdout) as { keys: { keyId: string; role: string; inCurrentRoot: boolean }[] }).keys;
      assert.deepEqual(
        keys
          .filter((k) => k.inCurrentRoot)
          .map((k) => [k.role, k.keyId])
          .sort(),
        [
          ['snapshot', root.roles['snapshot']!.keyids[0]],
          ['timestamp', pending.keyId],
        ],
      );
      const fresh = await notary(['list', GUN], { dir: path.join(work, 'fresh-after-server-key') });
      assert.equal(fresh.code, 0, fresh.out);
      assert.match(fresh.out, /^v2\s/m);
    },
  );
});

/** An `ecdsa` key as notary lists targets and snapshot keys. */
function plainKey(privateKey: KeyObject): TestKey {
  const publicB64 = createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
  return { keytype: 'ecdsa', publicB64, keyId: tufKeyId('ecdsa', publicB64), privateKey };
}

/** An `ecdsa-x509` key for a certificate (PEM) of `privateKey`. */
function certKeyFrom(pem: string, privateKey: KeyObject): TestKey {
  const publicB64 = Buffer.from(pem).toString('base64');
  return { keytype: 'ecdsa-x509', publicB64, keyId: tufKeyId('ecdsa-x509', publicB64), privateKey };
}
