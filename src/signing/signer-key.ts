/**
 * Keys of server-held signers: ECDSA P-256, listed in delegations as a notary-style delegation
 * certificate (`ecdsa-x509`, the certificate's PEM in base64), so that the repository owner can
 * add it with `notary delegation add`, `docker trust signer add` or `signet trust signer add`.
 * The certificate is self-signed by the key, with the fields notary writes for its own
 * certificates (KeyUsage digitalSignature + keyEncipherment, ExtKeyUsage codeSigning).
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { certificatePem, issueCertificateDer } from '../tuf/core/certificate-writer.js';
import { tufKeyId } from '../tuf/core/keys.js';
import type { DocumentSigner } from '../tuf/notary/generate.js';
import { signWith } from './server-key.js';

/** notary's certificate validity: ten years of 365 days. */
export const SIGNER_CERTIFICATE_VALIDITY_MS = 10 * 365 * 86_400_000;

export const SIGNER_KEYTYPE = 'ecdsa-x509';

export interface GeneratedSignerKey {
  /** TUF key ID of the certificate: what the delegation lists and signatures name. */
  keyId: string;
  keytype: typeof SIGNER_KEYTYPE;
  /** base64 of the certificate PEM (`keyval.public`). */
  publicKey: string;
  certificatePem: string;
  /** PKCS#8 DER: encrypt before it leaves memory. */
  privateDer: Buffer;
}

/** A new signer key and its delegation certificate (common name: the signer's name). */
export function generateSignerKey(commonName: string, nowMs: number): GeneratedSignerKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const second = Math.floor(nowMs / 1000) * 1000;
  const der = issueCertificateDer({
    commonName,
    subject: publicKey,
    issuer: { commonName, privateKey },
    notBefore: new Date(second),
    notAfter: new Date(second + SIGNER_CERTIFICATE_VALIDITY_MS),
    serial,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extKeyUsage: ['codeSigning'],
  });
  const pem = certificatePem(der);
  const publicB64 = Buffer.from(pem, 'latin1').toString('base64');
  return {
    keyId: tufKeyId(SIGNER_KEYTYPE, publicB64),
    keytype: SIGNER_KEYTYPE,
    publicKey: publicB64,
    certificatePem: pem,
    privateDer: privateKey.export({ type: 'pkcs8', format: 'der' }),
  };
}

/** A signer key ready to sign, from its decrypted PKCS#8 bytes: ECDSA signatures under its certificate's key ID. */
export function signerSigningKey(keyId: string, privateDer: Buffer): DocumentSigner & { keyId: string } {
  const privateKey = createPrivateKey({ key: privateDer, format: 'der', type: 'pkcs8' });
  return { keyId, sign: (message) => signWith('ecdsa', privateKey, keyId, message) };
}
