/**
 * Throw-away x509 certificates for tests, made with the `openssl` command line so that the
 * certificates come from an independent implementation rather than from our own encoder.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type TestKeyKind = 'p256' | 'p384' | 'rsa2048' | 'rsa1024';

export function generateKey(kind: TestKeyKind): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (kind) {
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'rsa2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa1024':
      return generateKeyPairSync('rsa', { modulusLength: 1024 });
  }
}

export interface TestCert {
  pem: string; // as written by openssl
  b64: string; // base64 of `pem`, i.e. a `keyval.public` value
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface CertOptions {
  cn: string;
  key?: TestKeyKind | { privateKey: KeyObject; publicKey: KeyObject };
  days?: number;
  digest?: 'sha256' | 'sha1';
  ca?: boolean;
}

/** A self-signed certificate (CA:FALSE leaf unless `ca`), valid from now for `days` (default 30). */
export function makeCert(opts: CertOptions): TestCert {
  const pair = typeof opts.key === 'object' ? opts.key : generateKey(opts.key ?? 'p256');
  const dir = mkdtempSync(path.join(tmpdir(), 'signet-cert-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const cfgFile = path.join(dir, 'req.cnf');
    const certFile = path.join(dir, 'cert.pem');
    writeFileSync(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(
      cfgFile,
      [
        '[req]',
        'distinguished_name = dn',
        'x509_extensions = ext',
        'prompt = no',
        '[dn]',
        `CN = ${opts.cn}`,
        '[ext]',
        opts.ca
          ? 'basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign'
          : 'basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = codeSigning',
        '',
      ].join('\n'),
    );
    execFileSync(
      'openssl',
      ['req', '-x509', '-new', '-key', keyFile, '-config', cfgFile, '-days', String(opts.days ?? 30), `-${opts.digest ?? 'sha256'}`, '-out', certFile],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const pem = readFileSync(certFile, 'latin1');
    return { pem, b64: Buffer.from(pem, 'latin1').toString('base64'), ...pair };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
