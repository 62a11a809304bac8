/**
 * `signet config`: the configuration in effect, as `signet serve` would load it from the
 * environment and the SIGNET_CONFIG file, with where each value came from and secrets redacted.
 */
import { configSchema, loadConfigWithSources, redactUrl, type ConfigSource } from '../config.js';

export type { ConfigSource };

export interface ShownConfig {
  /** The SIGNET_CONFIG file read, if any. */
  file: string | null;
  settings: Record<string, { value: unknown; source: ConfigSource }>;
}

const REDACTED = '(redacted)';

function redact(name: string, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (name === 'SIGNET_KEY_ENCRYPTION_KEY') return REDACTED;
  if (name === 'DATABASE_URL' && typeof value === 'string') return redactUrl(value);
  return value;
}

/** Throws ConfigError, exactly as the server does at start-up, when the configuration is invalid. */
export function showConfig(env: NodeJS.ProcessEnv = process.env): ShownConfig {
  const { config, sources } = loadConfigWithSources(env);
  const values = config as Record<string, unknown>;
  const settings: ShownConfig['settings'] = {};
  for (const name of Object.keys(configSchema.shape)) settings[name] = { value: redact(name, values[name]), source: sources[name] ?? 'default' };
  return { file: env['SIGNET_CONFIG'] || null, settings };
}

export function formatConfig(shown: ShownConfig): string {
  const lines = [shown.file ? `configuration file (SIGNET_CONFIG): ${shown.file}` : 'no configuration file (SIGNET_CONFIG unset)'];
  for (const [name, { value, source }] of Object.entries(shown.settings)) {
    lines.push(`${source.padEnd(8)}${name}${value === null ? ' (unset)' : `=${typeof value === 'string' ? value : JSON.stringify(value)}`}`);
  }
  return lines.join('\n');
}
