#!/usr/bin/env node
/** The `signet` command: serve, migrate. */
import { writeFileSync } from 'node:fs';
import { parseDevUser, startDevTokenService } from '../auth/dev-token-service.js';
import { ConfigError, configSchema, loadConfig, type Config } from '../config.js';
import { checkStore } from '../service/check-store.js';
import { createLogger } from '../log.js';
import { openDatabase } from '../storage/database.js';
import { migrate } from '../storage/migrate.js';
import { openServices, startServer } from '../server.js';
import { ADMIN_USAGE, runAdminCommand } from './admin.js';
import { configReference } from './config-reference.js';
import { isWorker, runPrimary } from './cluster.js';
import { exitWithError } from './failure.js';
import { importCommand } from '../import/command.js';

const USAGE = `usage: signet <command>

commands:
  serve     run the trust server (configuration from the environment)
  migrate   apply database migrations and exit
  check [--gun GUN] [--json]
            verify the whole store: hashes of every row, root version chains, every timestamp
            and snapshot reference; exit 0 when sound, 1 when errors were found
  config [--markdown]
            list the configuration variables with their defaults (--markdown: the docs table)
${ADMIN_USAGE}
  import --from postgres://…/notaryserver [--signer postgres://…/notarysigner] [--passphrase ALIAS=VALUE]...
         [--gun GUN] [--dry-run] [--json]
            copy a notary-server deployment (history, changefeed, server-held keys) into Signet;
            exit 0 when all was imported, 1 when something was refused or in conflict, 2 usage error
  dev-token-service [--port N] [--issuer S] [--service S] [--user name:password[:actions[:prefixes]]]...
            [--anonymous-actions pull] [--cert-out FILE]
            a registry-style token service for development and tests (not for production):
            writes the certificate Signet must trust to --cert-out (SIGNET_AUTH_ROOT_CERT_BUNDLE)

The embedded database under SIGNET_DATA_DIR (default ./data) is used unless DATABASE_URL is set.`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'config' && argv[1] === '--markdown') {
    console.log(configReference());
    return 0;
  }
  if (command === 'config') {
    const defaults = configSchema.parse({}) as Record<string, unknown>;
    for (const [name, schema] of Object.entries(configSchema.shape)) {
      const value = defaults[name];
      console.log(`${name}${value === undefined ? '' : ` (default ${JSON.stringify(value)})`}\n    ${schema.description ?? ''}`);
    }
    return 0;
  }
  if (command === 'dev-token-service') return devTokenService(argv.slice(1));
  if (command === 'import') return importCommand(argv.slice(1));
  const config = loadConfig();
  const admin = await runAdminCommand(command, argv.slice(1), config);
  if (admin !== null) return admin;
  const logger = createLogger(config.SIGNET_LOG_LEVEL);
  if (command === 'migrate') {
    const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.SIGNET_DATA_DIR });
    try {
      const applied = await migrate(database);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    } finally {
      await database.close();
    }
    return 0;
  }
  if (command === 'check') return check(config, argv.slice(1));
  if (command === 'serve') {
    if (config.SIGNET_WORKERS > 1 && !isWorker()) {
      await runPrimary(config, logger, config.SIGNET_WORKERS);
      return -1;
    }
    const server = await startServer(config, logger);
    // Always said, whatever the log level: scripts and supervisors wait for this line.
    if (isWorker()) process.send?.({ listening: server.url });
    else console.log(`signet listening on ${server.url}`);
    const stop = async (signal: string) => {
      logger.info('shutting down', { signal });
      await server.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
    return -1; // keep running
  }
  console.error(`signet: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  return 2;
}

function flags(args: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!;
    const value = args[i + 1];
    if (!name.startsWith('--') || value === undefined) throw new ConfigError(`bad argument ${JSON.stringify(name)}`);
    out.set(name.slice(2), [...(out.get(name.slice(2)) ?? []), value]);
    i++;
  }
  return out;
}

async function check(config: Config, args: string[]): Promise<number> {
  const json = args.includes('--json');
  const gunAt = args.indexOf('--gun');
  const gun = gunAt >= 0 ? args[gunAt + 1] : undefined;
  if (gunAt >= 0 && !gun) throw new ConfigError('--gun needs a repository name');
  const { database, context, listener } = await openServices(config, createLogger('error'));
  try {
    const report = await checkStore(context, gun);
    if (json) console.log(JSON.stringify(report, null, 2));
    else {
      for (const p of report.problems) console.log(`${p.severity.toUpperCase()} ${p.gun}: ${p.message}`);
      console.log(`${report.repositories} repositories, ${report.rows} files checked: ${report.errors} errors, ${report.warnings} warnings`);
    }
    return report.errors > 0 ? 1 : 0;
  } finally {
    await listener?.close();
    await database.close();
  }
}

async function devTokenService(args: string[]): Promise<number> {
  const f = flags(args);
  const one = (name: string, fallback: string) => f.get(name)?.at(-1) ?? fallback;
  const port = Number(one('port', '5001'));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port must be a port number, got ${JSON.stringify(one('port', ''))}`);
  const service = await startDevTokenService({
    port,
    issuer: one('issuer', 'signet-dev-token-service'),
    service: one('service', 'signet'),
    users: (f.get('user') ?? []).map(parseDevUser),
    anonymousActions: f.get('anonymous-actions')?.flatMap((a) => a.split(',')) ?? [],
  });
  const certOut = f.get('cert-out')?.at(-1);
  if (certOut) writeFileSync(certOut, service.certificatePem);
  console.log(`dev token service: realm ${service.realm}${certOut ? `, certificate in ${certOut}` : ''}`);
  process.once('SIGINT', () => void service.close().then(() => process.exit(0)));
  process.once('SIGTERM', () => void service.close().then(() => process.exit(0)));
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  // Usage and configuration mistakes exit 2; failures of the work itself exit 1.
  (error: unknown) => exitWithError(error),
);
