/**
 * Keys of server-held signers: ECDSA P-256, listed in delegations as a notary-style delegation
 * certificate (`ecdsa-x509`, the certificate's PEM in base64), so that the repository owner can
 * add it with `notary delegation add`, `docker trust signer add` or `signet trust signer add`.
 * The certificate is self-signed by the key, with the fields notary writes for its own
 * certificates (KeyUsage digitalSignature + keyEncipherment, ExtKeyUsage codeSigning).
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { certificatePem, issueCertificateDer, type CertificateFields } from '../tuf/core/certificate-writer.js';
import { tufKeyId } from '../tuf/core/keys.js';
import type { DocumentSigner } from '../tuf/notary/generate.js';
import { ecdsaRawToDer, type Pkcs11Token } from './pkcs11-keys.js';
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

function signerCertificate(commonName: string, publicKey: KeyObject, issuer: CertificateFields['issuer'], nowMs: number) {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const second = Math.floor(nowMs / 1000) * 1000;
  const der = issueCertificateDer({
    commonName,
    subject: publicKey,
    issuer,
    notBefore: new Date(second),
    notAfter: new Date(second + SIGNER_CERTIFICATE_VALIDITY_MS),
    serial,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extKeyUsage: ['codeSigning'],
  });
  const pem = certificatePem(der);
  const publicB64 = Buffer.from(pem, 'latin1').toString('base64');
  return { keyId: tufKeyId(SIGNER_KEYTYPE, publicB64), keytype: SIGNER_KEYTYPE as typeof SIGNER_KEYTYPE, publicKey: publicB64, certificatePem: pem };
}

/** A new signer key and its delegation certificate (common name: the signer's name). */
export function generateSignerKey(commonName: string, nowMs: number): GeneratedSignerKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...signerCertificate(commonName, publicKey, { commonName, privateKey }, nowMs), privateDer: privateKey.export({ type: 'pkcs8', format: 'der' }) };
}

/** The CKA_LABEL of a signer key's objects on a token. */
export function tokenKeyLabel(gun: string, name: string, keyId: string): string {
  return `signet ${gun} signer ${name} key ${keyId}`;
}

/**
 * A new signer key generated in the token, and its delegation certificate, self-signed there.
 * The key's objects end with CKA_ID = the key ID's bytes (`pkcs11Id`, its hex).
 */
export function generateTokenSignerKey(
  token: Pkcs11Token,
  gun: string,
  name: string,
  nowMs: number,
): Omit<GeneratedSignerKey, 'privateDer'> & { pkcs11Id: string } {
  const pair = token.generateKeyPair(`signet ${gun} signer ${name} (new)`);
  try {
    const cert = signerCertificate(name, pair.publicKey, { commonName: name, signEcdsaSha256: (tbs) => ecdsaRawToDer(token.signSha256(pair.id, tbs)) }, nowMs);
    token.identify(pair.id, cert.keyId, tokenKeyLabel(gun, name, cert.keyId));
    return { ...cert, pkcs11Id: cert.keyId };
  } catch (e) {
    token.destroy(pair.id);
    throw e;
  }
}

/** A signer key held in the token, ready to sign: notary's ECDSA signatures (raw r‖s) made by C_Sign. */
export function tokenSigningKey(token: Pkcs11Token, keyId: string, pkcs11Id: string): DocumentSigner & { keyId: string } {
  return { keyId, sign: (message) => ({ keyid: keyId, method: 'ecdsa', sig: token.signSha256(pkcs11Id, message).toString('base64') }) };
}

/** A signer key ready to sign, from its decrypted PKCS#8 bytes: ECDSA signatures under its certificate's key ID. */
export function signerSigningKey(keyId: string, privateDer: Buffer): DocumentSigner & { keyId: string } {
  const privateKey = createPrivateKey({ key: privateDer, format: 'der', type: 'pkcs8' });
  return { keyId, sign: (message) => signWith('ecdsa', privateKey, keyId, message) };
}
