/**
 * The server side of the `signet` command: serve, migrate, check, config, the admin commands,
 * import, dev-token-service. Loaded by main.ts only for these commands, so that the client
 * commands never load the database drivers or express.
 */
import { writeFileSync } from 'node:fs';
import { loadConfig, SETTING_NAMES } from '../config.js';
import { createLogger } from '../log.js';
import { openDatabase } from '../storage/database.js';
import { migrate } from '../storage/migrate.js';
import { openServices, startServer } from '../server.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';
import { isWorker, runPrimary } from './cluster.js';
import { tuneServerHeap } from './serve-heap.js';

/** The top-level usage; the admin commands' part is loaded with them (serve does not load them). */
const usage = (adminUsage: string) => `usage: signet <command> [options]      (signet <command> --help describes one)

server commands:
  serve     run the trust server (configuration from the environment)
  migrate   apply database migrations and exit
  check [--gun GUN] [--json]
            verify the whole store: hashes of every row, root version chains, every timestamp
            and snapshot reference; exit 0 when sound, 1 when errors were found
  config [--json | --markdown]
            the configuration in effect and where each value comes from (--markdown: the
            reference table of every variable, as in docs/configuration.md)
${adminUsage}
  import --from postgres://…/notaryserver [--signer postgres://…/notarysigner] [--passphrase ALIAS=VALUE]...
         [--gun GUN] [--dry-run] [--json]
            copy a notary-server deployment (history, changefeed, server-held keys) into Signet;
            exit 0 when all was imported, 1 when something was refused or in conflict, 2 usage error
  dev-token-service [--port N] [--issuer S] [--service S] [--user name:password[:actions[:prefixes]]]...
            [--anonymous-actions pull] [--cert-out FILE] [--oidc [--oidc-issuer URL] [--oidc-audience S]
            [--oidc-alg RS256|ES256] [--jwks-out FILE]]
            a registry-style token service for development and tests (not for production):
            writes the certificate Signet must trust to --cert-out (SIGNET_AUTH_ROOT_CERT_BUNDLE);
            --oidc also makes it an OIDC issuer of CI ID tokens (minted by POST /oidc/token)

client commands (no database, no server: see signet trust --help):
  trust key generate|load|rotate, trust signer add|remove, trust sign, trust revoke, trust inspect
            sign images and manage a repository's signers, as docker trust does
  verify IMAGE[:TAG|@DIGEST] [--signer NAME]... [--threshold N]
            print the trusted digest of an image and who signed it, or why not
  cosign generate-key-pair|sign|verify|import-notary
            Cosign key-pair signatures, interchangeable with cosign's, and Notary's carried over (docs/cosign.md)
  gate --policy FILE --tls-cert FILE --tls-key FILE
            the deploy gate: Kubernetes admission webhooks and a verify API (docs/gate.md)

options of every command: --help (-h) prints its usage, --version prints Signet's version.
Exit status: 0 done, 1 the work failed or found problems, 2 usage or configuration error.
The embedded database under SIGNET_DATA_DIR (default ./data) is used unless DATABASE_URL is set.`;

const CONFIG_NOTE = 'Configuration comes from the environment and the JSON file named by SIGNET_CONFIG (see signet config).';

const topSpec = async (): Promise<CommandSpec> => ({ name: '', usage: usage((await import('./admin.js')).ADMIN_USAGE) });

const SPECS = {
  serve: {
    name: 'serve',
    usage: `usage: signet serve\n\nRun the trust server until SIGINT or SIGTERM; prints \`signet listening on URL\` when ready.\nApplies pending migrations first. ${CONFIG_NOTE}`,
  },
  migrate: {
    name: 'migrate',
    usage: `usage: signet migrate\n\nApply the database migrations not yet applied, and exit. ${CONFIG_NOTE}`,
  },
  check: {
    name: 'check',
    usage: `usage: signet check [--gun GUN] [--json]\n\nVerify the store: the sha256 of every stored file against its bytes, root version chains,\nand every timestamp and snapshot reference.\n--gun GUN  only this repository (which must exist)\n--json     print the report as JSON\n\nExit status: 0 sound, 1 errors found (or no such repository), 2 usage or configuration error.`,
    options: { gun: { type: 'string' }, json: { type: 'boolean' } },
  },
  config: {
    name: 'config',
    usage: `usage: signet config [--json | --markdown]\n\nThe configuration in effect, as signet serve would load it from the environment and the\nSIGNET_CONFIG file, each value with its source (env, file or default); the key-encryption key\nand database passwords are redacted.\n--json      print JSON: {"file": …, "settings": {NAME: {"value": …, "source": …}}}\n--markdown  the reference table of every variable (docs/configuration.md); reads no configuration\n\nExit status: 0, or 2 when the configuration is invalid (reported as the server reports it).`,
    options: { json: { type: 'boolean' }, markdown: { type: 'boolean' } },
  },
  'dev-token-service': {
    name: 'dev-token-service',
    usage: `usage: signet dev-token-service [--port N] [--issuer S] [--service S] [--cert-out FILE]\n                                [--user name:password[:actions[:prefixes]]]... [--anonymous-actions pull]\n\nA registry-style token service for development and tests, not for production.\n--port N               port to listen on (default 5001; 0 picks a free one)\n--issuer S             token issuer (default signet-dev-token-service)\n--service S            token audience (default signet)\n--user SPEC            a user: name:password, optionally :actions (pull, push, *) and\n                       :prefixes (comma-separated repository prefixes); repeatable\n--anonymous-actions A  actions granted without credentials, e.g. pull; repeatable\n--cert-out FILE        write the certificate Signet must trust (SIGNET_AUTH_ROOT_CERT_BUNDLE)\n\nOIDC mode (an issuer of ID tokens as CI systems run them):\n--oidc                 serve /.well-known/openid-configuration and /.well-known/jwks, and mint\n                       ID tokens: POST /oidc/token {"claims": {...}, "audience": "...",\n                       "lifetimeSeconds": N} from loopback only; POST /oidc/rotate changes key\n--oidc-issuer URL      the tokens' iss (default the service's own URL)\n--oidc-audience S      aud when the request names none (default: --service)\n--oidc-alg A           RS256 (default) or ES256\n--jwks-out FILE        write the JWKS here (again after each rotation)`,
    options: {
      port: { type: 'string' },
      issuer: { type: 'string' },
      service: { type: 'string' },
      user: { type: 'string', multiple: true },
      'anonymous-actions': { type: 'string', multiple: true },
      'cert-out': { type: 'string' },
      oidc: { type: 'boolean' },
      'oidc-issuer': { type: 'string' },
      'oidc-audience': { type: 'string' },
      'oidc-alg': { type: 'string' },
      'jwks-out': { type: 'string' },
    },
  },
} satisfies Record<string, CommandSpec>;

export async function runServerCommand(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command === undefined) {
    console.error((await topSpec()).usage);
    return 2;
  }
  if (command === 'help') {
    // `signet help COMMAND` is `signet COMMAND --help`.
    if (argv.length > 1) return runServerCommand([...argv.slice(1), '--help']);
    console.log((await topSpec()).usage);
    return 0;
  }
  if (command.startsWith('-')) {
    if (parseCommand(await topSpec(), argv) === null) return 0;
    throw new UsageError('a command is needed first', ''); // unreachable: the top spec takes no arguments
  }
  const rest = argv.slice(1);
  // The server loads only what serving needs; the other commands' modules are loaded by them.
  if (command === 'serve') return serve(rest);
  const { runAdminCommand } = await import('./admin.js');
  const admin = await runAdminCommand(command, rest, () => loadConfig());
  if (admin !== null) return admin;
  switch (command) {
    case 'import':
      return (await import('./import-command.js')).importCommand(rest);
    case 'dev-token-service':
      return devTokenService(rest);
    case 'config':
      return config(rest);
    case 'migrate': {
      if (!parseCommand(SPECS.migrate, rest)) return 0;
      const config = loadConfig();
      const database = await openDatabase({
        url: config.DATABASE_URL,
        dataDir: config.SIGNET_DATA_DIR,
        connectRetrySeconds: config.SIGNET_DB_CONNECT_TIMEOUT,
        names: SETTING_NAMES.database,
      });
      try {
        const applied = await migrate(database);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      } finally {
        await database.close();
      }
      return 0;
    }
    case 'check':
      return check(rest);
  }
  throw new UsageError(`unknown command ${JSON.stringify(command)}`, '');
}

async function config(args: string[]): Promise<number> {
  const a = parseCommand(SPECS.config, args);
  if (!a) return 0;
  if (a.flag('markdown') && a.flag('json')) throw new UsageError('--json and --markdown exclude each other', 'config');
  if (a.flag('markdown')) {
    console.log((await import('./config-reference.js')).configReference());
    return 0;
  }
  const { formatConfig, showConfig } = await import('./config-show.js');
  const shown = showConfig();
  console.log(a.flag('json') ? JSON.stringify(shown, null, 2) : formatConfig(shown));
  return 0;
}

async function serve(args: string[]): Promise<number> {
  if (!parseCommand(SPECS.serve, args)) return 0;
  tuneServerHeap();
  const config = loadConfig();
  const logger = createLogger(config.SIGNET_LOG_LEVEL);
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

async function check(args: string[]): Promise<number> {
  const a = parseCommand(SPECS.check, args);
  if (!a) return 0;
  const gun = a.string('gun');
  if (gun === '') throw new UsageError('--gun needs a repository name', 'check');
  const { database, context, listener } = await openServices(loadConfig(), createLogger('error'));
  try {
    const { checkStore } = await import('../service/check-store.js');
    const report = await checkStore(context, gun);
    if (a.flag('json')) console.log(JSON.stringify(report, null, 2));
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
  const { parseDevUser, startDevTokenService } = await import('../auth/dev-token-service.js');
  const a = parseCommand(SPECS['dev-token-service'], args);
  if (!a) return 0;
  const portText = a.string('port') ?? '5001';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new UsageError(`--port must be a port number, got ${JSON.stringify(portText)}`, 'dev-token-service');
  let users;
  try {
    users = a.strings('user').map(parseDevUser);
  } catch (e) {
    throw new UsageError(`--${(e as Error).message}`, 'dev-token-service');
  }
  const alg = a.string('oidc-alg') ?? 'RS256';
  if (alg !== 'RS256' && alg !== 'ES256') throw new UsageError(`--oidc-alg must be RS256 or ES256, got ${JSON.stringify(alg)}`, 'dev-token-service');
  const oidcOnly = ['oidc-issuer', 'oidc-audience', 'oidc-alg', 'jwks-out'].filter((o) => a.string(o) !== undefined);
  if (!a.flag('oidc') && oidcOnly.length > 0) throw new UsageError(`--${oidcOnly[0]} needs --oidc`, 'dev-token-service');
  const issuerUrl = a.string('oidc-issuer');
  const audience = a.string('oidc-audience');
  const jwksOut = a.string('jwks-out');
  const service = await startDevTokenService({
    port,
    issuer: a.string('issuer') ?? 'signet-dev-token-service',
    service: a.string('service') ?? 'signet',
    users,
    anonymousActions: a.strings('anonymous-actions').flatMap((x) => x.split(',')),
    ...(a.flag('oidc')
      ? { oidc: { algorithm: alg, ...(issuerUrl ? { issuer: issuerUrl } : {}), ...(audience ? { audience } : {}), ...(jwksOut ? { jwksFile: jwksOut } : {}) } }
      : {}),
  });
  const certOut = a.string('cert-out');
  if (certOut) writeFileSync(certOut, service.certificatePem);
  console.log(`dev token service: realm ${service.realm}${certOut ? `, certificate in ${certOut}` : ''}`);
  if (service.oidc) {
    console.log(
      `dev OIDC issuer: ${service.oidc.issuer}, JWKS ${service.oidc.jwksUrl}${jwksOut ? ` (and ${jwksOut})` : ''}, mint ID tokens: POST ${service.url}/oidc/token`,
    );
  }
  process.once('SIGINT', () => void service.close().then(() => process.exit(0)));
  process.once('SIGTERM', () => void service.close().then(() => process.exit(0)));
  return -1;
}
