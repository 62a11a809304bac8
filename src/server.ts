/** Assemble a running Signet: database (migrated), keys, services, HTTP(S) listener. */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ConfigError, gunPrefixes, type Config, SETTING_NAMES } from './config.js';
import { TokenAuthenticator } from './auth/token-auth.js';
import { createApp } from './http/app.js';
import { backfillSummaries } from './service/repository-summary.js';
import { scanExpiry, summarise } from './service/expiry.js';
import { expireStagedUpdates } from './service/staged-updates.js';
import { withFastReads } from './http/fast-path.js';
import { observe } from './http/observe.js';
import { createLogger, type Logger } from './log.js';
import { createContext, type ServiceContext } from './service/context.js';
import { loadKeyEncryptionKey } from './signing/key-encryption.js';
import { KeyService } from './signing/key-service.js';
import { Pkcs11Error, Pkcs11Token } from './signing/pkcs11-keys.js';
import { bindKeyEncryptionKey } from './service/key-encryption-binding.js';
import { listenForChanges, type ChangeListener } from './storage/change-notifier.js';
import { openDatabase, prepareDataDir, type Database } from './storage/database.js';
import { migrate } from './storage/migrate.js';
import { Stores } from './storage/stores.js';
import { readFileSync } from 'node:fs';
import { loadTlsFiles, loadTokenRootBundle } from './startup-files.js';
import type { IdentityVerifier } from './auth/identity.js';
import { oidcIssuersFromConfig } from './auth/oidc.js';
import { oidcIdentityVerifier } from './auth/oidc-identity.js';
import { scanChecker } from './service/scan-check.js';

export interface RunningServer {
  url: string;
  port: number;
  context: ServiceContext;
  close(): Promise<void>;
}

export async function openServices(config: Config, logger: Logger): Promise<{ database: Database; context: ServiceContext; listener: ChangeListener | null }> {
  // The data directory holds the generated key-encryption key as well as the embedded store.
  if (!config.DATABASE_URL || !config.SIGNET_KEY_ENCRYPTION_KEY) prepareDataDir(config.SIGNET_DATA_DIR, SETTING_NAMES.database.dataDir);
  const kek = loadKeyEncryptionKey(config.SIGNET_KEY_ENCRYPTION_KEY, config.SIGNET_DATA_DIR, SETTING_NAMES.kek);
  const database = await openDatabase({
    url: config.DATABASE_URL,
    names: SETTING_NAMES.database,
    dataDir: config.SIGNET_DATA_DIR,
    poolSize: config.SIGNET_DB_POOL_SIZE,
    connectRetrySeconds: config.SIGNET_DB_CONNECT_TIMEOUT,
    log: logger,
  });
  try {
    const applied = await migrate(database);
    if (applied.length > 0) logger.info('migrations applied', { applied });
    await bindKeyEncryptionKey(new Stores(database.db), kek);
    const keys = new KeyService(kek, config.SIGNET_KEY_ALGORITHM, await openToken(config));
    const context = createContext(database, keys, {
      snapshotMs: config.SIGNET_SNAPSHOT_EXPIRY * 1000,
      timestampMs: config.SIGNET_TIMESTAMP_EXPIRY * 1000,
      stagedMs: config.SIGNET_STAGED_EXPIRY * 1000,
    });
    let listener: ChangeListener | null = null;
    if (database.kind === 'postgres' && config.DATABASE_URL) {
      listener = listenForChanges(
        config.DATABASE_URL,
        (gun) => context.current.invalidate(gun),
        (listening) => {
          context.current.setEnabled(listening);
          if (!listening) logger.warn('change notifications lost: metadata cache off until reconnected');
        },
      );
    }
    return { database, context, listener };
  } catch (e) {
    await database.close();
    throw e;
  }
}

/** The PKCS#11 token for signer keys, when configured; a token that cannot be opened is a configuration error. */
async function openToken(config: Config): Promise<Pkcs11Token | null> {
  if (!config.SIGNET_PKCS11_MODULE || !config.SIGNET_PKCS11_TOKEN_LABEL || !config.SIGNET_PKCS11_PIN_FILE) return null;
  try {
    return await Pkcs11Token.open({
      module: config.SIGNET_PKCS11_MODULE,
      tokenLabel: config.SIGNET_PKCS11_TOKEN_LABEL,
      pinFile: config.SIGNET_PKCS11_PIN_FILE,
    });
  } catch (e) {
    if (e instanceof Pkcs11Error && e.code === 'PKCS11_CONFIG') throw new ConfigError(e.message);
    throw e;
  }
}

const SCAN_LOCK = 0x5167_6e66;

/** Run `work` holding a database-wide advisory lock, or return null if another process holds it. */
async function withScanLock<T>(context: ServiceContext, work: () => Promise<T>): Promise<T | null> {
  // The embedded store has one process (and one connection, which the lock would hold).
  if (context.database.kind === 'pglite') return work();
  return context.stores.tryExclusive(SCAN_LOCK, work);
}

/**
 * The background expiry watch: re-signs server-held roles before they expire, and reports
 * client-signed roles nearing expiry as metrics and log warnings. First run shortly after start.
 */
function startExpiryWatch(context: ServiceContext, config: Config, logger: Logger): { stop(): void } {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      // One process scans at a time: with several on one database the others skip this round.
      const scan = await withScanLock(context, () =>
        scanExpiry(context, {
          windowMs: config.SIGNET_EXPIRY_WARNING_WINDOW * 1000,
          resignBeforeMs: config.SIGNET_RESIGN_BEFORE * 1000,
          pauseEvery: 20,
        }),
      );
      if (!scan) return;
      // Staged updates whose expiry passed are closed (and audited) by the same watch.
      const closed = await expireStagedUpdates(context);
      if (closed > 0) logger.info('staged updates expired', { count: closed });
      context.metrics.expiring.reset();
      context.metrics.expired.reset();
      for (const [kind, counts] of summarise(scan)) {
        context.metrics.expiring.set({ role: kind }, counts.expiring);
        context.metrics.expired.set({ role: kind }, counts.expired);
      }
      for (const r of scan.expiring) {
        logger.warn(
          r.expired ? 'metadata has expired: the owner must re-sign it' : 'metadata expires soon: the owner must re-sign it',
          r as unknown as Record<string, unknown>,
        );
      }
      if (scan.resigned.length > 0) logger.info('re-signed server-held metadata ahead of expiry', { repositories: scan.resigned.length });
    } catch (e) {
      logger.warn('expiry scan failed', { error: (e as Error).message });
    } finally {
      running = false;
    }
  };
  const first = setTimeout(() => void run(), Math.min(30, config.SIGNET_EXPIRY_SCAN_INTERVAL) * 1000);
  const timer = setInterval(() => void run(), config.SIGNET_EXPIRY_SCAN_INTERVAL * 1000);
  first.unref();
  timer.unref();
  return {
    stop() {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}

/** A failure to listen as one line naming the settings behind the address. */
function listenError(error: NodeJS.ErrnoException, config: Config): Error {
  const where = `SIGNET_HOST/SIGNET_PORT ${config.SIGNET_HOST}:${config.SIGNET_PORT}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return new Error(`${where}: the address is already in use`);
    case 'EACCES':
      return new Error(`${where}: permission denied (ports below 1024 need privileges)`);
    case 'EADDRNOTAVAIL':
      return new Error(`${where}: not an address of this machine`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new Error(`SIGNET_HOST ${config.SIGNET_HOST} cannot be resolved (${error.code})`);
    default:
      return new Error(`${where}: cannot listen: ${error.message}`);
  }
}

function tokenAuthenticator(config: Config): TokenAuthenticator | undefined {
  if (config.SIGNET_AUTH !== 'token') return undefined;
  const file = config.SIGNET_AUTH_ROOT_CERT_BUNDLE!;
  const rootCertBundle = loadTokenRootBundle(file);
  try {
    return new TokenAuthenticator({
      realm: config.SIGNET_AUTH_REALM!,
      service: config.SIGNET_AUTH_SERVICE!,
      issuer: config.SIGNET_AUTH_ISSUER!,
      rootCertBundle,
    });
  } catch (e) {
    throw new ConfigError(`SIGNET_AUTH_ROOT_CERT_BUNDLE ${file}: ${(e as Error).message}`);
  }
}

/** Read and check every file a setting names (TLS, token roots): throws a ConfigError naming both. */
export function checkStartupFiles(
  config: Config,
  logger?: Logger,
): {
  tlsFiles: ReturnType<typeof loadTlsFiles>;
  auth: TokenAuthenticator | undefined;
  oidcIssuers: unknown;
} {
  return { tlsFiles: loadTlsFiles(config, logger), auth: tokenAuthenticator(config), oidcIssuers: oidcIssuersConfig(config) };
}

/** The OIDC issuers' configuration (checked now, built once the replay store is open). */
function oidcIssuersConfig(config: Config): unknown {
  const file = config.SIGNET_OIDC_ISSUERS_FILE;
  if (!file) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`SIGNET_OIDC_ISSUERS_FILE ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    oidcIssuersFromConfig(value);
  } catch (e) {
    throw new ConfigError(`SIGNET_OIDC_ISSUERS_FILE ${file}: ${(e as Error).message}`);
  }
  return value;
}

export async function startServer(config: Config, logger = createLogger(config.SIGNET_LOG_LEVEL)): Promise<RunningServer> {
  // Every file a setting names is checked before anything is opened, so a wrong one fails fast.
  const { tlsFiles, auth, oidcIssuers } = checkStartupFiles(config, logger);
  const { database, context, listener } = await openServices(config, logger);
  // From here on a failure must close what is open: a live pool, LISTEN connection or embedded
  // store keeps the process from exiting, leaving it neither serving nor gone.
  try {
    const identityVerifier =
      oidcIssuers !== undefined ? oidcIdentityVerifier(oidcIssuersFromConfig(oidcIssuers, { replay: context.stores.oidcReplay })) : undefined;
    const running = await serve(config, logger, tlsFiles, auth, database, context, identityVerifier);
    return {
      ...running,
      async close() {
        await running.close();
        await listener?.close();
        await database.close();
        context.keys.close();
      },
    };
  } catch (e) {
    await listener?.close();
    await database.close();
    context.keys.close();
    throw e;
  }
}

async function serve(
  config: Config,
  logger: Logger,
  tlsFiles: ReturnType<typeof loadTlsFiles>,
  auth: TokenAuthenticator | undefined,
  database: Database,
  context: ServiceContext,
  identityVerifier: IdentityVerifier | undefined,
): Promise<RunningServer> {
  const cache = { currentMaxAge: config.SIGNET_CACHE_MAX_AGE_CURRENT, consistentMaxAge: config.SIGNET_CACHE_MAX_AGE_CONSISTENT };
  const app = createApp(context, {
    auth,
    cache,
    limits: { maxBodyBytes: config.SIGNET_MAX_BODY_BYTES, maxPartBytes: config.SIGNET_MAX_PART_BYTES, maxParts: config.SIGNET_MAX_PARTS },
    logger,
    expiryWarningSeconds: config.SIGNET_EXPIRY_WARNING_WINDOW,
    gunPrefixes: gunPrefixes(config.SIGNET_GUN_PREFIXES),
    signRateLimit: config.SIGNET_SIGN_RATE_LIMIT,
    identityVerifier,
    // Server-held signers that require a scan report have it checked by src/scan's policy.
    scanPolicy: scanChecker,
    ui: { enabled: config.SIGNET_UI === 'on', tls: tlsFiles !== null },
  });
  let closing = false;
  const served = observe(context.metrics, logger, withFastReads(context, { cache, auth, gunPrefixes: gunPrefixes(config.SIGNET_GUN_PREFIXES) }, app), {
    requests: config.SIGNET_LOG_REQUESTS,
    readSample: config.SIGNET_LOG_READ_SAMPLE,
  });
  // While draining, answers tell clients not to reuse the connection.
  const handler: typeof served = (req, res) => {
    if (closing) res.setHeader('Connection', 'close');
    served(req, res);
  };
  const tls = tlsFiles !== null;
  const server = tlsFiles
    ? https.createServer(
        {
          cert: tlsFiles.cert,
          key: tlsFiles.key,
          minVersion: 'TLSv1.2',
          connectionsCheckingInterval: 1000,
          // Mutual TLS: only clients with a certificate from this CA may connect.
          ...(tlsFiles.ca ? { ca: tlsFiles.ca, requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      )
    : http.createServer({ connectionsCheckingInterval: 1000 }, handler);
  // Slow or idle clients must not hold connections forever, nor too many of them.
  server.headersTimeout = config.SIGNET_HEADERS_TIMEOUT_MS;
  server.requestTimeout = config.SIGNET_REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = config.SIGNET_KEEP_ALIVE_TIMEOUT_MS;
  server.maxConnections = config.SIGNET_MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(listenError(e, config)));
    server.listen(config.SIGNET_PORT, config.SIGNET_HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.SIGNET_HOST.includes(':') ? `[${config.SIGNET_HOST}]` : config.SIGNET_HOST;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
  database.noteUrl?.(url);
  logger.info('signet listening', { url, store: database.kind });
  const watch = config.SIGNET_EXPIRY_SCAN_INTERVAL > 0 ? startExpiryWatch(context, config, logger) : null;
  // Repositories stored before the inspector's summaries existed are summarised once, in the background.
  void backfillSummaries(context.stores, context.cache)
    .then((n) => n > 0 && logger.info('repository summaries written', { repositories: n }))
    .catch((e: unknown) => logger.warn('repository summaries not written', { error: (e as Error).message }));
  return {
    url,
    port,
    context,
    async close() {
      // Graceful: stop accepting, let requests in flight finish, close connections as they go
      // idle (kept-alive ones would otherwise hold the process), and give up after 10 s.
      closing = true;
      watch?.stop();
      await new Promise<void>((resolve) => {
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        const hard = setTimeout(() => server.closeAllConnections(), 10_000);
        server.close(() => {
          clearInterval(idle);
          clearTimeout(hard);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
