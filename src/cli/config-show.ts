/**
 * `signet config`: the configuration in effect, as `signet serve` would load it from the
 * environment and the SIGNET_CONFIG file, with where each value came from and secrets redacted.
 */
import { readFileSync } from 'node:fs';
import { configSchema, loadConfig } from '../config.js';

export type ConfigSource = 'env' | 'file' | 'default';

export interface ShownConfig {
  /** The SIGNET_CONFIG file read, if any. */
  file: string | null;
  settings: Record<string, { value: unknown; source: ConfigSource }>;
}

const REDACTED = '(redacted)';

/** DATABASE_URL without its password, in URL or `key=value` form. */
export function redactDatabaseUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = 'REDACTED';
    if (url.searchParams.has('password')) url.searchParams.set('password', 'REDACTED');
    return url.toString().replaceAll('REDACTED', '***');
  } catch {
    return text.replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***');
  }
}

function redact(name: string, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (name === 'SIGNET_KEY_ENCRYPTION_KEY') return REDACTED;
  if (name === 'DATABASE_URL' && typeof value === 'string') return redactDatabaseUrl(value);
  return value;
}

/** Throws ConfigError, exactly as the server does at start-up, when the configuration is invalid. */
export function showConfig(env: NodeJS.ProcessEnv = process.env): ShownConfig {
  const config = loadConfig(env) as Record<string, unknown>;
  // loadConfig has read and parsed the file already; read again only to know which keys it set.
  const file = env['SIGNET_CONFIG'] || null;
  const fromFile = file ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const settings: ShownConfig['settings'] = {};
  for (const name of Object.keys(configSchema.shape)) {
    // The same precedence as loadConfig: a non-empty variable, then a non-empty file entry.
    const source: ConfigSource =
      env[name] !== undefined && env[name] !== '' ? 'env' : fromFile[name] !== undefined && fromFile[name] !== '' ? 'file' : 'default';
    settings[name] = { value: redact(name, config[name]), source };
  }
  return { file, settings };
}

export function formatConfig(shown: ShownConfig): string {
  const lines = [shown.file ? `configuration file (SIGNET_CONFIG): ${shown.file}` : 'no configuration file (SIGNET_CONFIG unset)'];
  for (const [name, { value, source }] of Object.entries(shown.settings)) {
    lines.push(`${source.padEnd(8)}${name}${value === null ? ' (unset)' : `=${typeof value === 'string' ? value : JSON.stringify(value)}`}`);
  }
  return lines.join('\n');
}
