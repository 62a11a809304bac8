/**
 * A private MariaDB (or MySQL) server for tests: a temp data directory, a free loopback port,
 * no grant tables (any user and password are let in), server time zone UTC as in notary's
 * containers. Uses Debian's `mariadb-server` binaries; as root, runs them as the `mysql` user.
 * Also notary's MySQL schemas, exactly its migrations (migrations/server/mysql 0001–0005,
 * migrations/signer/mysql 0001–0002).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mysql from 'mysql2/promise';

const SERVER_BINARIES = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'];
const INSTALL_DB = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'];

const first = (paths: string[]) => paths.find((p) => existsSync(p)) ?? null;

export const mariadbAvailable = (): boolean => first(SERVER_BINARIES) !== null && first(INSTALL_DB) !== null;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface MariaDb {
  host: string;
  port: number;
  /** `mysql://root:…@127.0.0.1:port/<database>` */
  url(database: string): string;
  /** A connection to `database` (multiple statements allowed). */
  connect(database?: string): Promise<mysql.Connection>;
  destroy(): Promise<void>;
}

export async function startMariaDb(): Promise<MariaDb> {
  const server = first(SERVER_BINARIES);
  const install = first(INSTALL_DB);
  if (!server || !install) throw new Error('MariaDB server binaries not installed');
  const dir = mkdtempSync('/tmp/signet-test-mariadb-');
  chmodSync(dir, 0o755);
  const root = process.getuid?.() === 0;
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'mysql']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'mysql']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const asUser = root ? ['--user=mysql'] : [];
  const datadir = path.join(dir, 'data');
  const r = spawnSync(install, ['--no-defaults', `--datadir=${datadir}`, ...asUser, '--auth-root-authentication-method=normal', '--skip-test-db'], {
    stdio: 'pipe',
  });
  if (r.status !== 0) throw new Error(`${install} failed: ${r.stderr.toString()}${r.stdout.toString()}`);

  const port = await freePort();
  const child: ChildProcess = spawn(
    server,
    [
      '--no-defaults',
      `--datadir=${datadir}`,
      ...asUser,
      `--port=${port}`,
      `--socket=${path.join(dir, 'mysqld.sock')}`,
      '--bind-address=127.0.0.1',
      '--skip-grant-tables',
      '--skip-name-resolve',
      `--pid-file=${path.join(dir, 'mysqld.pid')}`,
      `--log-error=${path.join(dir, 'error.log')}`,
      '--default-time-zone=+00:00',
      '--innodb-buffer-pool-size=32M',
    ],
    { stdio: 'ignore' },
  );
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  const connect = (database?: string) =>
    mysql.createConnection({
      host: '127.0.0.1',
      port,
      user: 'root',
      database,
      multipleStatements: true,
      charset: 'utf8mb4',
    });
  const log = () => {
    try {
      return readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const destroy = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await gone;
      clearTimeout(timer);
    }
    process.removeListener('exit', reap);
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      const text = log();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mariadbd exited:\n${text}`);
    }
    try {
      const c = await connect();
      await c.end();
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        const text = log();
        await destroy();
        throw new Error(`mariadbd did not start: ${(e as Error).message}\n${text}`, { cause: e });
      }
      await new Promise((res) => setTimeout(res, 200));
    }
  }
  return {
    host: '127.0.0.1',
    port,
    url: (database) => `mysql://root:not-checked@127.0.0.1:${port}/${database}`,
    connect,
    destroy,
  };
}

/** notary-server's MySQL migrations 0001–0005, as notary ships them. */
export const NOTARY_SERVER_MYSQL_SCHEMA = `
CREATE TABLE \`timestamp_keys\` (
  \`id\` int(11) NOT NULL AUTO_INCREMENT,
  \`created_at\` timestamp NULL DEFAULT NULL,
  \`updated_at\` timestamp NULL DEFAULT NULL,
  \`deleted_at\` timestamp NULL DEFAULT NULL,
  \`gun\` varchar(255) NOT NULL,
  \`cipher\` varchar(50) NOT NULL,
  \`public\` blob NOT NULL,
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`gun\` (\`gun\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
CREATE TABLE \`tuf_files\` (
  \`id\` int(11) NOT NULL AUTO_INCREMENT,
  \`created_at\` timestamp NULL DEFAULT NULL,
  \`updated_at\` timestamp NULL DEFAULT NULL,
  \`deleted_at\` timestamp NULL DEFAULT NULL,
  \`gun\` varchar(255) NOT NULL,
  \`role\` varchar(255) NOT NULL,
  \`version\` int(11) NOT NULL,
  \`data\` longblob NOT NULL,
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`gun\` (\`gun\`,\`role\`,\`version\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
ALTER TABLE \`timestamp_keys\` ADD COLUMN \`role\` VARCHAR(255) NOT NULL, DROP KEY \`gun\`, ADD UNIQUE KEY \`gun_role\` (\`gun\`, \`role\`);
UPDATE \`timestamp_keys\` SET \`role\`="timestamp";
ALTER TABLE \`tuf_files\` ADD COLUMN \`sha256\` CHAR(64) DEFAULT NULL, ADD INDEX \`sha256\` (\`sha256\`);
UPDATE \`tuf_files\` SET \`sha256\` = SHA2(\`data\`, 256);
DROP TABLE IF EXISTS \`timestamp_keys\`;
CREATE TABLE \`change_category\` (
  \`category\` VARCHAR(20) NOT NULL,
  PRIMARY KEY (\`category\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
INSERT INTO \`change_category\` VALUES ("update"), ("deletion");
CREATE TABLE \`changefeed\` (
  \`id\` int(11) NOT NULL AUTO_INCREMENT,
  \`created_at\` timestamp DEFAULT CURRENT_TIMESTAMP,
  \`gun\` varchar(255) NOT NULL,
  \`version\` int(11) NOT NULL,
  \`sha256\` CHAR(64) DEFAULT NULL,
  \`category\` VARCHAR(20) NOT NULL DEFAULT "update",
  PRIMARY KEY (\`id\`),
  FOREIGN KEY (\`category\`) REFERENCES \`change_category\` (\`category\`),
  INDEX \`idx_changefeed_gun\` (\`gun\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
INSERT INTO \`changefeed\` (\`created_at\`, \`gun\`, \`version\`, \`sha256\`)
  (SELECT \`created_at\`, \`gun\`, \`version\`, \`sha256\` FROM \`tuf_files\` WHERE \`role\` = "timestamp" ORDER BY \`created_at\` ASC);
`;

/** notary-signer's MySQL migrations 0001–0002, as notary ships them. */
export const NOTARY_SIGNER_MYSQL_SCHEMA = `
CREATE TABLE \`private_keys\` (
  \`id\` int(11) NOT NULL AUTO_INCREMENT,
  \`created_at\` timestamp NULL DEFAULT NULL,
  \`updated_at\` timestamp NULL DEFAULT NULL,
  \`deleted_at\` timestamp NULL DEFAULT NULL,
  \`key_id\` varchar(255) NOT NULL,
  \`encryption_alg\` varchar(255) NOT NULL,
  \`keywrap_alg\` varchar(255) NOT NULL,
  \`algorithm\` varchar(50) NOT NULL,
  \`passphrase_alias\` varchar(50) NOT NULL,
  \`public\` blob NOT NULL,
  \`private\` blob NOT NULL,
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`key_id\` (\`key_id\`),
  UNIQUE KEY \`key_id_2\` (\`key_id\`,\`algorithm\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
ALTER TABLE \`private_keys\` ADD COLUMN \`gun\` VARCHAR(255) NOT NULL, ADD COLUMN \`role\` VARCHAR(255) NOT NULL, ADD COLUMN \`last_used\` DATETIME NULL DEFAULT NULL;
`;

/** Create `name` on the server with `schema`; returns its mysql:// URL. */
export async function createMysqlDatabase(db: MariaDb, name: string, schema: string): Promise<string> {
  const c = await db.connect();
  try {
    await c.query(`CREATE DATABASE \`${name}\``);
    await c.query(`USE \`${name}\``);
    await c.query(schema);
  } finally {
    await c.end();
  }
  return db.url(name);
}
