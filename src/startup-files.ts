/**
 * The files settings name (TLS certificate, key and client CA; the token root bundle), read and
 * checked before anything is opened, so that a wrong one stops Signet at once with one line
 * naming the setting and the file instead of failing deep inside the TLS or auth setup.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { ConfigError, type Config } from './config.js';
import type { Logger } from './log.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const KEY_BLOCK = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
const SWAPPED = ' (are SIGNET_TLS_CERT and SIGNET_TLS_KEY swapped?)';

function read(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new ConfigError(`${setting} ${file} cannot be read: ${(e as Error).message}`);
  }
}

/** Every certificate in a PEM file; at least one, each of them valid. */
export function pemCertificates(setting: string, file: string, pem: Buffer, hint = ''): X509Certificate[] {
  const text = pem.toString('utf8');
  const blocks = text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) {
    if (KEY_BLOCK.test(text)) throw new ConfigError(`${setting} ${file} is a private key, not a certificate${hint}`);
    throw new ConfigError(`${setting} ${file} holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----" blocks)`);
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (e) {
      throw new ConfigError(`${setting} ${file}: certificate ${i + 1} of ${blocks.length} is not valid: ${(e as Error).message}`);
    }
  });
}

function privateKey(setting: string, file: string, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (e) {
    const text = pem.toString('utf8');
    if (!KEY_BLOCK.test(text) && text.includes('-----BEGIN CERTIFICATE-----'))
      throw new ConfigError(`${setting} ${file} is a certificate, not a private key${SWAPPED}`);
    if (/ENCRYPTED/.test(text)) throw new ConfigError(`${setting} ${file} is an encrypted private key; Signet needs it unencrypted`);
    throw new ConfigError(`${setting} ${file} is not a PEM private key: ${(e as Error).message}`);
  }
}

/** The HTTPS certificate, key and client CA, checked to belong together; null without HTTPS. */
export function loadTlsFiles(config: Config, logger?: Logger): TlsFiles | null {
  const certFile = config.SIGNET_TLS_CERT;
  const keyFile = config.SIGNET_TLS_KEY;
  if (!certFile || !keyFile) return null;
  const cert = read('SIGNET_TLS_CERT', certFile);
  const key = read('SIGNET_TLS_KEY', keyFile);
  const caFile = config.SIGNET_TLS_CLIENT_CA;
  const ca = caFile ? read('SIGNET_TLS_CLIENT_CA', caFile) : undefined;
  const leaf = pemCertificates('SIGNET_TLS_CERT', certFile, cert, SWAPPED)[0]!;
  const keyObject = privateKey('SIGNET_TLS_KEY', keyFile, key);
  if (!leaf.checkPrivateKey(keyObject)) throw new ConfigError(`SIGNET_TLS_KEY ${keyFile} does not match SIGNET_TLS_CERT ${certFile}`);
  if (ca && caFile) pemCertificates('SIGNET_TLS_CLIENT_CA', caFile, ca);
  try {
    // What the HTTPS server will do with them, so nothing new can fail once the database is open.
    tls.createSecureContext({ cert, key, ...(ca ? { ca } : {}), minVersion: 'TLSv1.2' });
  } catch (e) {
    const files = `SIGNET_TLS_CERT ${certFile}, SIGNET_TLS_KEY ${keyFile}${caFile ? `, SIGNET_TLS_CLIENT_CA ${caFile}` : ''}`;
    throw new ConfigError(`TLS cannot use ${files}: ${(e as Error).message}`);
  }
  if (Date.parse(leaf.validTo) < Date.now()) logger?.warn('SIGNET_TLS_CERT has expired: clients will refuse it', { file: certFile, validTo: leaf.validTo });
  return { cert, key, ...(ca ? { ca } : {}) };
}

/** The token root certificate bundle as text, checked to hold valid certificates. */
export function loadTokenRootBundle(file: string): string {
  const pem = read('SIGNET_AUTH_ROOT_CERT_BUNDLE', file);
  pemCertificates('SIGNET_AUTH_ROOT_CERT_BUNDLE', file, pem);
  return pem.toString('utf8');
}
