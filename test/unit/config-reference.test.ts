/** docs/configuration.md lists exactly the settings the code accepts, with their real defaults. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { configReference } from '../../src/cli/config-reference.js';
import { configSchema, loadConfig, ConfigError } from '../../src/config.js';
import { projectRoot } from '../support/paths.js';

test('the settings table in docs/configuration.md is the one generated from the schema', () => {
  const doc = readFileSync(path.join(projectRoot, 'docs', 'configuration.md'), 'utf8');
  assert.ok(doc.includes(configReference()), 'docs/configuration.md is stale: regenerate with `signet config --markdown`');
});

test('every setting is described', () => {
  for (const [name, schema] of Object.entries(configSchema.shape)) {
    assert.ok((schema as { description?: string }).description, `${name} has no description`);
  }
});

test('invalid values are reported by name with a reason', () => {
  assert.throws(
    () => loadConfig({ SIGNET_PORT: '70000' }),
    (e: unknown) => e instanceof ConfigError && /SIGNET_PORT/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ SIGNET_KEY_ENCRYPTION_KEY: 'short' }),
    (e: unknown) => e instanceof ConfigError && /SIGNET_KEY_ENCRYPTION_KEY/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ SIGNET_TLS_CERT: '/x.pem' }),
    (e: unknown) => e instanceof ConfigError && /SIGNET_TLS_KEY must be set together/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ SIGNET_WORKERS: '2' }),
    (e: unknown) => e instanceof ConfigError && /DATABASE_URL/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ SIGNET_AUTH: 'token' }),
    (e: unknown) => e instanceof ConfigError && /SIGNET_AUTH_REALM/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ SIGNET_LOG_LEVEL: 'loud' }),
    (e: unknown) => e instanceof ConfigError && /SIGNET_LOG_LEVEL/.test(e.message),
  );
});

test('empty variables count as unset, and the environment wins over defaults', () => {
  assert.equal(loadConfig({ SIGNET_PORT: '' }).SIGNET_PORT, 4443);
  assert.equal(loadConfig({ SIGNET_PORT: '5000' }).SIGNET_PORT, 5000);
  assert.equal(loadConfig({}).SIGNET_HOST, '127.0.0.1');
});
