/** Settings are read strictly, and every mistake is one line naming the variable, the value and what is expected. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, redactUrl } from '../../src/config.js';

/** The message loadConfig throws for `env`. */
function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e.message.split('\n');
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

test('a port must be decimal digits in range, and the message says what was given and what is expected', () => {
  assert.deepEqual(problems({ SIGNET_PORT: 'abc' }), ['SIGNET_PORT: "abc" is not a port number (expected an integer 0-65535)']);
  for (const text of ['0x3c4b', '1e3', ' 80', '80 ', '+80', '-1', '80.0', '70000', '0b101', 'Infinity']) {
    assert.deepEqual(problems({ SIGNET_PORT: text }), [`SIGNET_PORT: ${JSON.stringify(text)} is not a port number (expected an integer 0-65535)`], text);
  }
  assert.equal(loadConfig({ SIGNET_PORT: '0' }).SIGNET_PORT, 0);
  assert.equal(loadConfig({ SIGNET_PORT: '08080' }).SIGNET_PORT, 8080);
});

test('every integer setting accepts decimal digits only', () => {
  for (const key of [
    'SIGNET_WORKERS',
    'SIGNET_DB_POOL_SIZE',
    'SIGNET_DB_CONNECT_TIMEOUT',
    'SIGNET_TIMESTAMP_EXPIRY',
    'SIGNET_MAX_BODY_BYTES',
    'SIGNET_HEADERS_TIMEOUT_MS',
  ]) {
    const [line, ...rest] = problems({ [key]: '0x10' });
    assert.match(line!, new RegExp(`^${key}: "0x10" is not a whole number \\(expected an integer \\d+-\\d+\\)$`), key);
    assert.deepEqual(rest, []);
  }
  assert.deepEqual(problems({ SIGNET_WORKERS: '0' }), ['SIGNET_WORKERS: "0" is out of range (expected an integer 1-64)']);
  assert.equal(loadConfig({ SIGNET_DB_CONNECT_TIMEOUT: '0' }).SIGNET_DB_CONNECT_TIMEOUT, 0);
  assert.equal(loadConfig({}).SIGNET_DB_CONNECT_TIMEOUT, 30);
});

test('the read sample is a decimal fraction', () => {
  assert.equal(loadConfig({ SIGNET_LOG_READ_SAMPLE: '0.25' }).SIGNET_LOG_READ_SAMPLE, 0.25);
  assert.equal(loadConfig({ SIGNET_LOG_READ_SAMPLE: '1' }).SIGNET_LOG_READ_SAMPLE, 1);
  assert.deepEqual(problems({ SIGNET_LOG_READ_SAMPLE: '0x1' }), ['SIGNET_LOG_READ_SAMPLE: "0x1" is not a number (expected a decimal number 0-1)']);
  assert.deepEqual(problems({ SIGNET_LOG_READ_SAMPLE: '2' }), ['SIGNET_LOG_READ_SAMPLE: "2" is out of range (expected a decimal number 0-1)']);
});

test('numbers in the configuration file are held to the same rules', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'signet-config-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ SIGNET_PORT: 5000, SIGNET_WORKERS: 1.5, SIGNET_HOST: true }));
  assert.deepEqual(problems({ SIGNET_CONFIG: file }), [
    'SIGNET_HOST: SIGNET_CONFIG gives a boolean (expected a string or a number)',
    'SIGNET_WORKERS: "1.5" is not a whole number (expected an integer 1-64)',
  ]);
  writeFileSync(file, JSON.stringify({ SIGNET_PORT: 5000 }));
  assert.equal(loadConfig({ SIGNET_CONFIG: file }).SIGNET_PORT, 5000);
});

test('choices list what is allowed', () => {
  assert.deepEqual(problems({ SIGNET_KEY_ALGORITHM: 'rsa' }), ['SIGNET_KEY_ALGORITHM: "rsa" is not allowed (expected one of ed25519, ecdsa)']);
});

test('every problem is listed, one line each', () => {
  assert.deepEqual(problems({ SIGNET_PORT: '99999', SIGNET_KEY_ALGORITHM: 'rsa', SIGNET_MAX_PARTS: 'many' }), [
    'SIGNET_PORT: "99999" is not a port number (expected an integer 0-65535)',
    'SIGNET_KEY_ALGORITHM: "rsa" is not allowed (expected one of ed25519, ecdsa)',
    'SIGNET_MAX_PARTS: "many" is not a whole number (expected an integer 1-100000)',
  ]);
});

test('DATABASE_URL must be a postgres:// or postgresql:// URL, and its password is never shown', () => {
  const expected = '(expected postgres://user:password@host:port/database or postgresql://...)';
  assert.deepEqual(problems({ DATABASE_URL: 'notaurl' }), [`DATABASE_URL: "notaurl" is not a URL ${expected}`]);
  assert.deepEqual(problems({ DATABASE_URL: 'mysql://root:hunter2@db/notary' }), [
    `DATABASE_URL: "mysql://root:***@db/notary" is a mysql:// URL, not a Postgres one ${expected}`,
  ]);
  assert.deepEqual(problems({ DATABASE_URL: 'http://db:5432/signet' }), [
    `DATABASE_URL: "http://db:5432/signet" is a http:// URL, not a Postgres one ${expected}`,
  ]);
  assert.equal(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/signet' }).DATABASE_URL, 'postgres://u:p@db:5432/signet');
  assert.equal(loadConfig({ DATABASE_URL: 'postgresql://db/signet' }).DATABASE_URL, 'postgresql://db/signet');
  assert.equal(redactUrl('postgres://signet:s3cret@db:5432/signet'), 'postgres://signet:***@db:5432/signet');
  assert.equal(redactUrl('postgres://db/signet'), 'postgres://db/signet');
  assert.equal(redactUrl('not a url://u:s3cret@x'), 'not a url://u:***@x');
});

test('a malformed key-encryption key is refused up front without repeating it', () => {
  const lines = problems({ SIGNET_KEY_ENCRYPTION_KEY: 'not-the-secret' });
  assert.deepEqual(lines, [
    'SIGNET_KEY_ENCRYPTION_KEY: the value given (14 characters, not shown) is not a key (expected 32 bytes as 64 hex characters or base64)',
  ]);
  assert.ok(!lines.join('\n').includes('not-the-secret'));
  assert.ok(loadConfig({ SIGNET_KEY_ENCRYPTION_KEY: 'ab'.repeat(32) }).SIGNET_KEY_ENCRYPTION_KEY);
});
