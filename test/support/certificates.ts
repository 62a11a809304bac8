/**
 * X.509 certificates issued by another key (a CA and the leaves it signs), built directly in DER
 * for tests that need chains, on top of src/auth/self-signed-certificate.ts.
 * Minimal on purpose: version 3, random serial, CN-only names, basicConstraints; no key
 * identifiers, so issuers are matched by name and signature only.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { certificatePem, issueCertificateDer } from '../../src/auth/self-signed-certificate.js';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export type { IssueOptions } from '../../src/auth/self-signed-certificate.js';
import type { IssueOptions } from '../../src/auth/self-signed-certificate.js';

export interface IssuedCertificate {
  pem: string;
  der: Buffer;
  /** base64 of the DER, as a JWS `x5c` entry. */
  x5c: string;
}

/** A certificate for `subject` signed by `issuer.privateKey` (ecdsa-with-SHA256 or sha256WithRSA). */
export function issueCertificate(opts: IssueOptions): IssuedCertificate {
  const der = issueCertificateDer({ notAfter: new Date(Date.now() + 365 * 86400_000), ...opts });
  return { der, x5c: der.toString('base64'), pem: certificatePem(der) };
}

export interface TestCa extends KeyPair {
  commonName: string;
  cert: IssuedCertificate;
  /** A leaf (CA:FALSE) for a fresh P-256 key, signed by this CA. */
  issueLeaf(commonName: string, opts?: { notBefore?: Date; notAfter?: Date; key?: KeyPair }): KeyPair & { cert: IssuedCertificate };
}

/** A self-signed CA (CA:TRUE, P-256) that issues leaves. */
export function makeTestCa(commonName: string): TestCa {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = issueCertificate({ commonName, subject: pair.publicKey, issuer: { commonName, privateKey: pair.privateKey }, isCA: true });
  return {
    ...pair,
    commonName,
    cert,
    issueLeaf(leafName, opts = {}) {
      const leaf = opts.key ?? generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const leafCert = issueCertificate({
        commonName: leafName,
        subject: leaf.publicKey,
        issuer: { commonName, privateKey: pair.privateKey },
        ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
        ...(opts.notAfter ? { notAfter: opts.notAfter } : {}),
      });
      return { ...leaf, cert: leafCert };
    },
  };
}

/** The DER of a PEM certificate, base64 (an `x5c` entry). */
export function x5cOf(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----|\s/g, '');
}
