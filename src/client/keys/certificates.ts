/**
 * The public forms of a key that other tools read: the root certificate notary lists a root key
 * as, and the `NAME.pub` file `docker trust key generate NAME` writes next to the private key.
 */
import { randomBytes } from 'node:crypto';
import { certificatePem, issueCertificateDer } from '../../tuf/core/certificate-writer.js';
import { tufKeyId } from '../../tuf/core/keys.js';
import { KeyStoreError } from './errors.js';
import { encodePem } from './pem.js';
import { privateKeyOf, tufPublicBytes, type KeyMaterial, type TufPublicKey } from './signing-key.js';

/** notary's root certificate validity: ten years of 365 days (`notary.Year * 10`). */
export const ROOT_CERTIFICATE_VALIDITY_MS = 10 * 365 * 24 * 3600_000;

export interface RootCertificate {
  /** PEM of the certificate, as notary base64-encodes into `keyval.public`. */
  pem: string;
  der: Buffer;
  /** The TUF key ID of the `ecdsa-x509` (or `rsa-x509`) key: what root.json lists and root signatures name. */
  keyId: string;
  /** The key as listed in root.json. */
  tufPublic: TufPublicKey;
}

/**
 * A self-signed root certificate for `gun`, as notary makes one (`cryptoservice.GenerateCertificate`,
 * `utils.NewCertificate`): CN = issuer = the GUN, a random serial below 2^128, KeyUsage
 * digitalSignature + keyEncipherment (critical), ExtKeyUsage codeSigning, BasicConstraints
 * without cA (critical), ecdsa-with-SHA256. Validity is given (notary: now to now + ten years,
 * ROOT_CERTIFICATE_VALIDITY_MS). ECDSA and RSA keys only: notary cannot certify ed25519 root keys.
 */
export function rootCertificate(key: KeyMaterial, gun: string, validity: { notBeforeMs: number; notAfterMs: number; serial?: Buffer }): RootCertificate {
  if (key.keytype !== 'ecdsa' && key.keytype !== 'rsa')
    throw new KeyStoreError('KEY_UNSUPPORTED', `root keys must be ECDSA (or RSA): notary cannot make a certificate for an ${key.keytype} key`);
  const privateKey = privateKeyOf(key);
  const der = issueCertificateDer({
    commonName: gun,
    subject: key.publicKey,
    issuer: { commonName: gun, privateKey },
    // Go truncates the times to whole seconds when it writes them.
    notBefore: new Date(Math.floor(validity.notBeforeMs / 1000) * 1000),
    notAfter: new Date(Math.floor(validity.notAfterMs / 1000) * 1000),
    serial: validity.serial ?? randomBytes(16),
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extKeyUsage: ['codeSigning'],
  });
  const pem = certificatePem(der);
  const keytype = key.keytype === 'ecdsa' ? 'ecdsa-x509' : 'rsa-x509';
  const publicB64 = Buffer.from(pem, 'latin1').toString('base64');
  return { pem, der, keyId: tufKeyId(keytype, publicB64), tufPublic: { keytype, keyval: { public: publicB64, private: null } } };
}

/** The `NAME.pub` file of `docker trust key generate NAME`: a `PUBLIC KEY` block with a `role` header over the key's TUF public bytes. */
export function publicKeyPem(key: KeyMaterial, role: string): string {
  return encodePem({ type: 'PUBLIC KEY', headers: role ? { role } : {}, bytes: tufPublicBytes(key.keytype, key.publicKey) });
}
