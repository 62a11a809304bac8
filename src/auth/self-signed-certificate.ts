/**
 * Self-signed X.509 certificates for the development token service's signing certificate and for
 * tests (which need arbitrary validity dates, hashes and CA flags). Not for production PKI. The
 * DER itself is written by src/tuf/core/certificate-writer.ts; this adds the defaults that need a
 * clock and randomness: valid from an hour ago for ten years, a random serial.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { certificatePem, issueCertificateDer as issueDer } from '../tuf/core/certificate-writer.js';

export { certificatePem };

export interface CertOptions {
  commonName: string;
  notBefore?: Date;
  notAfter?: Date;
  isCA?: boolean;
  /** Signature hash of the certificate itself. */
  hash?: 'sha256' | 'sha1';
}

export interface IssueOptions extends CertOptions {
  /** Public key the certificate is about. */
  subject: KeyObject;
  /** Who signs: the issuer's common name and private key (EC P-256 or RSA). */
  issuer: { commonName: string; privateKey: KeyObject };
}

/** The DER of a certificate for `subject`, signed by `issuer` (itself for a self-signed one). */
export function issueCertificateDer(opts: IssueOptions): Buffer {
  const serial = randomBytes(8);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // eight bytes, positive, no leading zero
  const now = Date.now();
  return issueDer({
    commonName: opts.commonName,
    subject: opts.subject,
    issuer: opts.issuer,
    notBefore: opts.notBefore ?? new Date(now - 3600_000),
    notAfter: opts.notAfter ?? new Date(now + 10 * 365 * 86400_000),
    serial,
    isCA: opts.isCA,
    hash: opts.hash,
  });
}

/** A self-signed certificate over `privateKey`/`publicKey` as PEM. */
export function selfSignedCertificate(privateKey: KeyObject, publicKey: KeyObject, opts: CertOptions): string {
  return certificatePem(issueCertificateDer({ ...opts, subject: publicKey, issuer: { commonName: opts.commonName, privateKey } }));
}
