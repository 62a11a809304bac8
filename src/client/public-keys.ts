/**
 * Public keys given to `signer add`, read as docker and notary read them
 * (`tuf/utils.ParsePEMPublicKey`): a `CERTIFICATE` becomes an `ecdsa-x509` / `rsa-x509` key whose
 * public part is the certificate's PEM; a `PUBLIC KEY` is an ECDSA or RSA SubjectPublicKeyInfo,
 * or notary's raw 32-byte ed25519 key (what `NAME.pub` holds for an ed25519 signer).
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { loadVerifierKey } from '../tuf/core/keys.js';
import type { MetadataKey } from '../tuf/notary/metadata.js';
import { ClientError } from './errors.js';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/;

export function parsePublicKeyPem(pem: string, what = 'public key file'): MetadataKey {
  const m = BLOCK.exec(pem);
  if (!m) throw new ClientError('BAD_INPUT', `${what} holds no PEM block`);
  const type = m[1]!;
  // Skip PEM headers (`role: alice`) before the base64 body.
  const body = m[2]!
    .split(/\r?\n/)
    .filter((l) => l && !l.includes(':'))
    .join('');
  const der = Buffer.from(body, 'base64');
  let key: MetadataKey;
  if (type === 'CERTIFICATE') {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(m[0]);
    } catch {
      throw new ClientError('BAD_INPUT', `${what}: the certificate cannot be read`);
    }
    const kind = cert.publicKey.asymmetricKeyType;
    if (kind !== 'ec' && kind !== 'rsa') throw new ClientError('BAD_INPUT', `${what}: certificates must hold an ECDSA or RSA key, not ${kind}`);
    const certPem = `-----BEGIN CERTIFICATE-----\n${cert.raw.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
    key = { keytype: kind === 'ec' ? 'ecdsa-x509' : 'rsa-x509', keyval: { private: null, public: Buffer.from(certPem).toString('base64') } };
  } else if (type === 'PUBLIC KEY') {
    if (der.length === 32) key = { keytype: 'ed25519', keyval: { private: null, public: der.toString('base64') } };
    else {
      let kind: string | undefined;
      try {
        kind = createPublicKey({ key: der, format: 'der', type: 'spki' }).asymmetricKeyType;
      } catch {
        throw new ClientError('BAD_INPUT', `${what}: not a public key`);
      }
      if (kind !== 'ec' && kind !== 'rsa') throw new ClientError('BAD_INPUT', `${what}: ECDSA, RSA or ed25519 keys only, not ${kind}`);
      key = { keytype: kind === 'ec' ? 'ecdsa' : 'rsa', keyval: { private: null, public: der.toString('base64') } };
    }
  } else throw new ClientError('BAD_INPUT', `${what}: a PUBLIC KEY or CERTIFICATE PEM block is needed, not ${type}`);
  try {
    loadVerifierKey(key.keytype, key.keyval.public);
  } catch (err) {
    throw new ClientError('BAD_INPUT', `${what}: ${(err as Error).message}`);
  }
  return key;
}
