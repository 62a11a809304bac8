/**
 * The reference notary deployment for import tests: notary-server and notary-signer (Debian
 * package `notary` 0.7) on Postgres, talking gRPC over mutual TLS on loopback, and the `notary`
 * CLI to fill them. Schemas are notary's own migrations (migrations/server/postgresql/0001–0002,
 * migrations/signer/postgresql/0001), schema only: the changefeed back-fill of 0002 is left out,
 * the `change_category` values stay (the foreign key needs them).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';

export const NOTARY_SERVER_SCHEMA = `
CREATE TABLE "tuf_files" (
  "id" serial PRIMARY KEY,
  "created_at" timestamp NULL DEFAULT NULL,
  "updated_at" timestamp NULL DEFAULT NULL,
  "deleted_at" timestamp NULL DEFAULT NULL,
  "gun" varchar(255) NOT NULL,
  "role" varchar(255) NOT NULL,
  "version" integer NOT NULL,
  "data" bytea NOT NULL,
  "sha256" char(64) DEFAULT NULL,
  UNIQUE ("gun","role","version")
);
CREATE INDEX tuf_files_sha256_idx ON tuf_files(sha256);
CREATE TABLE "change_category" (
  "category" VARCHAR(20) PRIMARY KEY
);
INSERT INTO "change_category" VALUES ('update'), ('deletion');
CREATE TABLE "changefeed" (
  "id" serial PRIMARY KEY,
  "created_at" timestamp DEFAULT CURRENT_TIMESTAMP,
  "gun" varchar(255) NOT NULL,
  "version" integer NOT NULL,
  "sha256" CHAR(64) DEFAULT NULL,
  "category" VARCHAR(20) NOT NULL DEFAULT 'update' REFERENCES "change_category"
);
CREATE INDEX "idx_changefeed_gun" ON "changefeed" ("gun");
`;

export const NOTARY_SIGNER_SCHEMA = `
CREATE TABLE "private_keys" (
  "id" serial PRIMARY KEY,
  "created_at" timestamp NULL DEFAULT NULL,
  "updated_at" timestamp NULL DEFAULT NULL,
  "deleted_at" timestamp NULL DEFAULT NULL,
  "key_id" varchar(255) NOT NULL,
  "encryption_alg" varchar(255) NOT NULL,
  "keywrap_alg" varchar(255) NOT NULL,
  "algorithm" varchar(50) NOT NULL,
  "passphrase_alias" varchar(50) NOT NULL,
  "public" bytea NOT NULL,
  "private" bytea NOT NULL,
  "gun" varchar(255) NOT NULL,
  "role" varchar(255) NOT NULL,
  "last_used" timestamp NULL DEFAULT NULL,
  CONSTRAINT "key_id" UNIQUE ("key_id"),
  CONSTRAINT "key_id_2" UNIQUE ("key_id","algorithm")
);
`;

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Which of the reference binaries are missing. */
export function missingNotaryBinaries(): string[] {
  return ['notary', 'notary-server', 'notary-signer', 'openssl'].filter((c) => !has(c));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Create `name` on the cluster at `adminUrl` with `schema`; returns its URL. */
export async function createNotaryDatabase(adminUrl: string, name: string, schema: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  await c.query(schema);
  await c.end();
  return url.toString();
}

export interface NotaryTls {
  ca: string;
  signerCert: string;
  signerKey: string;
  serverCert: string;
  serverKey: string;
}

/**
 * A CA and two certificates: notary-signer's (SAN 127.0.0.1, notary-signer) and notary-server's
 * (SAN 127.0.0.1, localhost, notary-server), the latter also its client certificate to the signer.
 */
export function makeNotaryTls(dir: string): NotaryTls {
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=notary-test-ca');
  for (const [name, sans] of [
    ['signer', 'IP:127.0.0.1,DNS:notary-signer'],
    ['server', 'IP:127.0.0.1,DNS:localhost,DNS:notary-server'],
  ] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=notary-${name}`);
    writeFileSync(f(`${name}.ext`), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
    );
  }
  return { ca: f('ca.crt'), signerCert: f('signer.crt'), signerKey: f('signer.key'), serverCert: f('server.crt'), serverKey: f('server.key') };
}

export interface NotaryProcess {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function launch(command: string, args: string[], env: Record<string, string>): NotaryProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  return {
    child,
    output: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

async function waitFor(what: string, proc: NotaryProcess, ready: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited with ${proc.child.exitCode}:\n${proc.output()}`);
    if (await ready()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  await proc.stop();
  throw new Error(`${what} did not become ready:\n${proc.output()}`);
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface SignerOptions {
  dir: string;
  dbUrl: string;
  tls: NotaryTls;
  port: number;
  alias: string;
  passphrase: string;
}

/** notary-signer with Postgres key storage; its passphrase in NOTARY_SIGNER_<ALIAS>. */
export async function startNotarySigner(o: SignerOptions): Promise<NotaryProcess> {
  const config = path.join(o.dir, 'signer-config.json');
  const db = new URL(o.dbUrl);
  db.searchParams.set('sslmode', 'disable');
  writeFileSync(
    config,
    JSON.stringify(
      {
        server: { grpc_addr: `127.0.0.1:${o.port}`, tls_cert_file: o.tls.signerCert, tls_key_file: o.tls.signerKey, client_ca_file: o.tls.ca },
        logging: { level: 'info' },
        storage: { backend: 'postgres', db_url: db.toString(), default_alias: o.alias },
      },
      null,
      2,
    ),
  );
  const proc = launch('notary-signer', ['-config', config], { [`NOTARY_SIGNER_${o.alias.toUpperCase()}`]: o.passphrase });
  await waitFor('notary-signer', proc, () => tcpOpen(o.port));
  return proc;
}

export interface ServerOptions {
  dir: string;
  dbUrl: string;
  tls: NotaryTls;
  port: number;
  signerPort: number;
  keyAlgorithm: 'ecdsa' | 'ed25519';
}

/** notary-server over HTTPS with Postgres storage and the remote signer. */
export async function startNotaryServer(o: ServerOptions): Promise<NotaryProcess & { url: string }> {
  const config = path.join(o.dir, `server-config-${o.keyAlgorithm}.json`);
  const db = new URL(o.dbUrl);
  db.searchParams.set('sslmode', 'disable');
  writeFileSync(
    config,
    JSON.stringify(
      {
        server: { http_addr: `127.0.0.1:${o.port}`, tls_cert_file: o.tls.serverCert, tls_key_file: o.tls.serverKey },
        trust_service: {
          type: 'remote',
          hostname: '127.0.0.1',
          port: String(o.signerPort),
          key_algorithm: o.keyAlgorithm,
          tls_ca_file: o.tls.ca,
          tls_client_cert: o.tls.serverCert,
          tls_client_key: o.tls.serverKey,
        },
        logging: { level: 'info' },
        storage: { backend: 'postgres', db_url: db.toString() },
      },
      null,
      2,
    ),
  );
  const proc = launch('notary-server', ['-config', config], {});
  const url = `https://127.0.0.1:${o.port}`;
  await waitFor('notary-server', proc, async () => {
    const r = spawnSync('curl', ['-sf', '--cacert', o.tls.ca, `${url}/_notary_server/health`]);
    return r.status === 0;
  });
  return { ...proc, url };
}

export const NOTARY_PASSPHRASES = {
  NOTARY_ROOT_PASSPHRASE: 'root-pass',
  NOTARY_TARGETS_PASSPHRASE: 'targets-pass',
  NOTARY_SNAPSHOT_PASSPHRASE: 'snapshot-pass',
  NOTARY_DELEGATION_PASSPHRASE: 'delegation-pass',
};

/** Run the notary CLI; resolves with its exit code and combined output. */
export function notaryCli(
  opts: { server: string; trustDir: string; ca?: string | undefined },
  args: string[],
  stdin?: Buffer | string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const full = ['-s', opts.server, '-d', opts.trustDir, ...(opts.ca ? ['--tlscacert', opts.ca] : []), ...args];
    const child = spawn('notary', full, { env: { ...process.env, ...NOTARY_PASSPHRASES }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.stdin.end(stdin ?? '');
    child.on('exit', (code) => resolve({ code, out: `$ notary ${args.join(' ')}\n${out}` }));
  });
}

/** notary-server over HTTPS with its memory store and local signing service (ecdsa keys). */
export async function startMemoryNotaryServer(o: { dir: string; tls: NotaryTls; port: number }): Promise<NotaryProcess & { url: string }> {
  const config = path.join(o.dir, 'server-config-memory.json');
  writeFileSync(
    config,
    JSON.stringify({
      server: { http_addr: `127.0.0.1:${o.port}`, tls_cert_file: o.tls.serverCert, tls_key_file: o.tls.serverKey },
      trust_service: { type: 'local', key_algorithm: 'ecdsa' },
      logging: { level: 'info' },
      storage: { backend: 'memory' },
    }),
  );
  const proc = launch('notary-server', ['-config', config], {});
  const url = `https://127.0.0.1:${o.port}`;
  await waitFor('notary-server', proc, async () => spawnSync('curl', ['-sf', '--cacert', o.tls.ca, `${url}/_notary_server/health`]).status === 0);
  return { ...proc, url };
}
