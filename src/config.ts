/**
 * Configuration from the environment (and optionally a JSON file named by SIGNET_CONFIG whose
 * keys are the same variable names), validated with zod. The environment wins over the file.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseKeyEncryptionKey } from './signing/key-encryption.js';

const DAY = 24 * 60 * 60;

// Numbers are plain z.number() schemas: loadConfig turns the text of a variable into a number
// itself, from decimal digits only (z.coerce would take "0x3c4b", "1e3" or " 80 " as numbers).
const port = z.number().int().min(0).max(65535);
const integer = (min: number, max: number) => z.number().int().min(min).max(max);
const seconds = integer;
const bytes = integer;
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

export { databaseUrlProblem, redactUrl } from './storage/database-url.js';
import { databaseUrlProblem, redactUrl } from './storage/database-url.js';
import { SignetError } from './tuf/core/signet-error.js';

const KEK_EXPECTED = '32 bytes as 64 hex characters or base64';

export const configSchema = z
  .object({
    SIGNET_HOST: z.string().min(1).default('127.0.0.1').describe('Address to listen on. Use `0.0.0.0` (or `::`) to listen on every interface.'),
    SIGNET_PORT: port.default(4443).describe('Port to listen on. `0` picks a free port; the `signet listening on …` line shows which.'),
    SIGNET_TLS_CERT: optionalText.describe('PEM certificate (chain) file; with `SIGNET_TLS_KEY` enables HTTPS.'),
    SIGNET_TLS_KEY: optionalText.describe('PEM private key file for `SIGNET_TLS_CERT`.'),
    DATABASE_URL: optionalText
      .refine((v) => v === undefined || databaseUrlProblem(v) === null, 'must be a postgres:// or postgresql:// URL')
      .describe('Postgres database to use; unset = embedded PGlite in `SIGNET_DATA_DIR`.'),
    SIGNET_WORKERS: integer(1, 64)
      .default(1)
      .describe(
        'Serving processes sharing the port (more than 1 needs `DATABASE_URL`). A supervising process applies migrations, starts the workers and replaces one that dies.',
      ),
    SIGNET_DB_POOL_SIZE: integer(1, 200).default(10).describe('Postgres connections per process.'),
    SIGNET_DB_CONNECT_TIMEOUT: seconds(0, 3600)
      .default(30)
      .describe(
        'Seconds to keep retrying the first connection to `DATABASE_URL` while it refuses (a database still starting); each failed attempt is logged. `0` = one attempt.',
      ),
    SIGNET_DATA_DIR: z
      .string()
      .min(1)
      .default('./data')
      .describe('Embedded database (`<dir>/pgdata`) and generated key-encryption key (`<dir>/signet-kek`). Created if missing.'),
    SIGNET_KEY_ENCRYPTION_KEY: optionalText
      .refine((v) => v === undefined || parseKeyEncryptionKey(v) !== null, KEK_EXPECTED)
      .describe('Key encrypting server keys at rest; unset = `<data dir>/signet-kek`, created on first start.'),
    SIGNET_KEY_ALGORITHM: z.enum(['ed25519', 'ecdsa']).default('ed25519').describe('Algorithm of new server-held timestamp/snapshot keys (`ecdsa` = P-256).'),
    SIGNET_TIMESTAMP_EXPIRY: seconds(60, 10 * 365 * DAY)
      .default(14 * DAY)
      .describe('Lifetime of server-signed timestamps, seconds.'),
    SIGNET_SNAPSHOT_EXPIRY: seconds(60, 100 * 365 * DAY)
      .default(3 * 365 * DAY)
      .describe('Lifetime of server-signed snapshots, seconds.'),
    SIGNET_STAGED_EXPIRY: seconds(60, 365 * DAY)
      .default(7 * DAY)
      .describe('Lifetime of a staged update (key ceremonies) unless the request asks for another, seconds.'),
    SIGNET_SIGN_RATE_LIMIT: integer(0, 1_000_000)
      .default(600)
      .describe(
        'Signing calls of server-held signers (`POST …/signers/{name}/sign`) one identity may make per minute, per process (a burst of as many at once); `0` = unlimited. Over it: `429 RATE_LIMITED` with `Retry-After`.',
      ),
    SIGNET_OIDC_ISSUERS_FILE: optionalText.describe(
      'JSON file listing the OIDC issuers whose ID tokens may call server-held signers (`[{"issuer", "audience", "jwksUrl" or "jwksFile" (else discovery), "algorithms", "clockSkewSeconds", "conditions"}]`, see docs/pipelines.md). Unset = registry tokens only.',
    ),
    SIGNET_PKCS11_MODULE: optionalText.describe(
      "PKCS#11 module (`.so`) of a token to hold server-held signers' keys: new ones are generated in the token and sign there, never leaving it (see docs/operations.md). Needs `SIGNET_PKCS11_TOKEN_LABEL` and `SIGNET_PKCS11_PIN_FILE`. Unset = signer keys are sealed under the key-encryption key.",
    ),
    SIGNET_PKCS11_TOKEN_LABEL: optionalText.describe('Label of the token in `SIGNET_PKCS11_MODULE` to use.'),
    SIGNET_PKCS11_PIN_FILE: optionalText.describe("File holding the token's user PIN (one line), read once at start; the PIN is never logged."),
    SIGNET_MAX_BODY_BYTES: bytes(1024, 1024 * 1024 * 1024)
      .default(100 * 1024 * 1024)
      .describe('Largest accepted update body.'),
    SIGNET_MAX_PART_BYTES: bytes(1024, 1024 * 1024 * 1024)
      .default(32 * 1024 * 1024)
      .describe('Largest accepted metadata file in an update.'),
    SIGNET_MAX_PARTS: integer(1, 100_000).default(1000).describe('Most metadata files in one update.'),
    SIGNET_EXPIRY_SCAN_INTERVAL: seconds(0, 7 * DAY)
      .default(3600)
      .describe('Seconds between expiry scans (re-signing and warnings); 0 = never'),
    SIGNET_RESIGN_BEFORE: seconds(60, 365 * DAY)
      .default(7 * DAY)
      .describe('Re-sign server-held timestamps/snapshots when they expire within this many seconds'),
    SIGNET_EXPIRY_WARNING_WINDOW: seconds(0, 10 * 365 * DAY)
      .default(30 * DAY)
      .describe('Report client-signed roles expiring within this many seconds'),
    SIGNET_UI: z
      .enum(['on', 'off'])
      .default('on')
      .describe('The read-only web inspector under `/ui/` (and `/` redirecting there); `off` answers those paths 404. The `/api/v1/` read API stays.'),
    SIGNET_HEADERS_TIMEOUT_MS: integer(1000, 600_000).default(20_000).describe('Time a client has to send its request headers, milliseconds.'),
    SIGNET_REQUEST_TIMEOUT_MS: integer(1000, 3_600_000).default(120_000).describe('Time a client has to send a whole request, milliseconds.'),
    SIGNET_KEEP_ALIVE_TIMEOUT_MS: integer(0, 600_000).default(5_000).describe('Idle time before a kept-alive connection is closed, milliseconds.'),
    SIGNET_MAX_CONNECTIONS: integer(1, 1_000_000).default(10_000).describe('Open connections per process; more are refused.'),
    SIGNET_CACHE_MAX_AGE_CURRENT: seconds(0, 365 * DAY)
      .default(300)
      .describe('`Cache-Control` max-age of current metadata (`root.json`, `timestamp.json`, …). `0` disables caching.'),
    SIGNET_CACHE_MAX_AGE_CONSISTENT: seconds(0, 365 * DAY)
      .default(30 * DAY)
      .describe('`Cache-Control` max-age of metadata by checksum or version. `0` disables caching.'),
    SIGNET_TLS_CLIENT_CA: optionalText.describe('PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS). Needs HTTPS.'),
    SIGNET_AUTH: z.enum(['none', 'token']).default('none').describe('`token`: require registry Bearer tokens on every route but health.'),
    SIGNET_AUTH_REALM: optionalText.describe('Token service URL sent in 401 challenges (token auth).'),
    SIGNET_AUTH_SERVICE: optionalText.describe('Expected token audience, the service name (token auth).'),
    SIGNET_AUTH_ISSUER: optionalText.describe('Expected token issuer (token auth).'),
    SIGNET_AUTH_ROOT_CERT_BUNDLE: optionalText.describe('PEM file of certificates whose keys may sign tokens (token auth).'),
    SIGNET_GUN_PREFIXES: optionalText.describe(
      'Comma-separated repository name prefixes to serve (e.g. `registry.example.com/`); others are refused: 400 `INVALID_GUN` on update, 404 elsewhere. Unset = all',
    ),
    SIGNET_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info').describe('Log verbosity. Logs are JSON lines on stderr.'),
    SIGNET_LOG_REQUESTS: z
      .enum(['all', 'writes', 'errors', 'off'])
      .default('writes')
      .describe(
        'Which requests get an info-level log line: `all`; `writes` (every write, whatever its answer, and a sample of reads: see `SIGNET_LOG_READ_SAMPLE`); `errors` (5xx only, which are always logged at error level); `off` (none, errors included). The rest log at debug level.',
      ),
    SIGNET_LOG_READ_SAMPLE: z.number().min(0).max(1).default(0).describe('Fraction of reads (0 to 1) logged at info level when `SIGNET_LOG_REQUESTS=writes`.'),
  })
  .refine(
    (c) =>
      [c.SIGNET_PKCS11_MODULE, c.SIGNET_PKCS11_TOKEN_LABEL, c.SIGNET_PKCS11_PIN_FILE].every((v) => v === undefined) ||
      Boolean(c.SIGNET_PKCS11_MODULE && c.SIGNET_PKCS11_TOKEN_LABEL && c.SIGNET_PKCS11_PIN_FILE),
    {
      message: 'SIGNET_PKCS11_MODULE, SIGNET_PKCS11_TOKEN_LABEL and SIGNET_PKCS11_PIN_FILE must be set together',
      path: ['SIGNET_PKCS11_MODULE'],
    },
  )
  .refine((c) => Boolean(c.SIGNET_TLS_CERT) === Boolean(c.SIGNET_TLS_KEY), {
    message: 'SIGNET_TLS_CERT and SIGNET_TLS_KEY must be set together',
    path: ['SIGNET_TLS_CERT'],
  })
  .refine((c) => c.SIGNET_EXPIRY_SCAN_INTERVAL === 0 || c.SIGNET_RESIGN_BEFORE < c.SIGNET_TIMESTAMP_EXPIRY, {
    message: 'must be shorter than SIGNET_TIMESTAMP_EXPIRY, or every scan would re-sign every timestamp',
    path: ['SIGNET_RESIGN_BEFORE'],
  })
  .refine(
    (c) => !c.SIGNET_GUN_PREFIXES || gunPrefixes(c.SIGNET_GUN_PREFIXES).every((p) => p.endsWith('/') && !p.startsWith('/') && !p.split('/').includes('..')),
    {
      message: 'each prefix must end with "/", not start with "/", and have no ".." segment',
      path: ['SIGNET_GUN_PREFIXES'],
    },
  )
  .refine((c) => c.SIGNET_WORKERS === 1 || Boolean(c.DATABASE_URL), {
    message: 'SIGNET_WORKERS above 1 needs DATABASE_URL: the embedded store serves one process',
    path: ['SIGNET_WORKERS'],
  })
  .refine((c) => !c.SIGNET_TLS_CLIENT_CA || Boolean(c.SIGNET_TLS_CERT), {
    message: 'SIGNET_TLS_CLIENT_CA needs HTTPS (SIGNET_TLS_CERT and SIGNET_TLS_KEY)',
    path: ['SIGNET_TLS_CLIENT_CA'],
  })
  .refine((c) => c.SIGNET_AUTH !== 'token' || Boolean(c.SIGNET_AUTH_REALM && c.SIGNET_AUTH_SERVICE && c.SIGNET_AUTH_ISSUER && c.SIGNET_AUTH_ROOT_CERT_BUNDLE), {
    message: 'SIGNET_AUTH=token needs SIGNET_AUTH_REALM, SIGNET_AUTH_SERVICE, SIGNET_AUTH_ISSUER and SIGNET_AUTH_ROOT_CERT_BUNDLE',
    path: ['SIGNET_AUTH'],
  });

export type Config = z.output<typeof configSchema>;

/** How the parts below name the settings they were given, in their messages. */
export const SETTING_NAMES = { database: { url: 'DATABASE_URL', dataDir: 'SIGNET_DATA_DIR' }, kek: 'SIGNET_KEY_ENCRYPTION_KEY' } as const;

/** The configured prefixes as a list (empty: every repository name is served). */
export function gunPrefixes(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

export class ConfigError extends SignetError {
  readonly code = 'CONFIG';
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfigWithSources(env).config;
}

/** Where a setting in effect came from. */
export type ConfigSource = 'env' | 'file' | 'default';

/** The configuration, with where each setting came from (for `signet config`). */
export function loadConfigWithSources(env: NodeJS.ProcessEnv = process.env): { config: Config; sources: Record<string, ConfigSource> } {
  let fromFile: Record<string, unknown> = {};
  if (env.SIGNET_CONFIG) {
    try {
      fromFile = JSON.parse(readFileSync(env.SIGNET_CONFIG, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`cannot read SIGNET_CONFIG ${env.SIGNET_CONFIG}: ${(e as Error).message}`);
    }
  }
  const problems: string[] = [];
  const input: Record<string, unknown> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const [key, schema] of Object.entries(configSchema.shape)) {
    // An empty variable means "not set", as shells and compose files often produce them.
    const fromEnv = env[key] === '' ? undefined : env[key];
    const value = fromEnv ?? fromFile[key];
    sources[key] = value === undefined || value === '' ? 'default' : fromEnv !== undefined ? 'env' : 'file';
    if (value === undefined || value === '') continue;
    if (typeof value !== 'string' && typeof value !== 'number') {
      problems.push(`${key}: SIGNET_CONFIG gives a ${value === null ? 'null' : typeof value} (expected a string or a number)`);
      continue;
    }
    const checked = checkValue(key, schema, String(value));
    if ('problem' in checked) problems.push(`${key}: ${checked.problem}`);
    else input[key] = checked.value;
  }
  const result = configSchema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${issue.path.join('.') || 'config'}: ${issue.message}`);
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems.join('\n'));
  return { config: result.data, sources };
}

/** The value as quoted in a message: secrets are never repeated. */
function shown(key: string, text: string): string {
  if (key === 'SIGNET_KEY_ENCRYPTION_KEY') return `(${text.length} characters, not shown)`;
  const visible = key === 'DATABASE_URL' ? redactUrl(text) : text;
  return JSON.stringify(visible.length > 80 ? `${visible.slice(0, 77)}...` : visible);
}

/** Check one setting's text on its own and turn it into the schema's input type. */
function checkValue(key: string, schema: z.ZodType, text: string): { value: unknown } | { problem: string } {
  const base = schema instanceof z.ZodDefault ? (schema.unwrap() as z.ZodType) : schema;
  if (base instanceof z.ZodNumber) {
    const min = base.minValue ?? 0;
    const max = base.maxValue ?? Number.MAX_SAFE_INTEGER;
    const expected = `expected ${base.isInt ? 'an integer' : 'a decimal number'} ${min}-${max}`;
    const digits = base.isInt ? /^\d+$/ : /^(\d+(\.\d*)?|\.\d+)$/;
    const n = Number(text);
    if (digits.test(text) && n >= min && n <= max) return { value: n };
    if (key === 'SIGNET_PORT') return { problem: `${shown(key, text)} is not a port number (${expected})` };
    if (digits.test(text)) return { problem: `${shown(key, text)} is out of range (${expected})` };
    return { problem: `${shown(key, text)} is not ${base.isInt ? 'a whole number' : 'a number'} (${expected})` };
  }
  if (base instanceof z.ZodEnum) {
    const options = base.options as string[];
    if (options.includes(text)) return { value: text };
    return { problem: `${shown(key, text)} is not allowed (expected one of ${options.join(', ')})` };
  }
  if (key === 'SIGNET_KEY_ENCRYPTION_KEY' && parseKeyEncryptionKey(text) === null) {
    return { problem: `the value given ${shown(key, text)} is not a key (expected ${KEK_EXPECTED})` };
  }
  if (key === 'DATABASE_URL') {
    const problem = databaseUrlProblem(text);
    if (problem) return { problem: `${shown(key, text)} ${problem} (expected postgres://user:password@host:port/database or postgresql://...)` };
  }
  return { value: text };
}
