/**
 * X.509 certificates issued by another key (a CA and the leaves it signs), built directly in DER
 * for tests that need chains: src/auth/self-signed-certificate.ts only makes self-signed ones.
 * Minimal on purpose: version 3, random serial, CN-only names, basicConstraints; no key
 * identifiers, so issuers are matched by name and signature only.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
};
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk: number[] = [];
    for (let v = n; ; v = Math.floor(v / 128)) {
      chunk.unshift((v & 0x7f) | (chunk.length ? 0x80 : 0));
      if (v < 128) break;
    }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
function derTime(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}
const nameOf = (cn: string) => seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface IssueOptions {
  /** Common name of the new certificate. */
  commonName: string;
  /** Key the certificate is about. */
  subject: KeyObject;
  /** Signer: its common name and private key (EC P-256 or RSA). Same as the subject for a self-signed certificate. */
  issuer: { commonName: string; privateKey: KeyObject };
  isCA?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

export interface IssuedCertificate {
  pem: string;
  der: Buffer;
  /** base64 of the DER, as a JWS `x5c` entry. */
  x5c: string;
}

/** A certificate for `subject` signed by `issuer.privateKey` (ecdsa-with-SHA256 or sha256WithRSA). */
export function issueCertificate(opts: IssueOptions): IssuedCertificate {
  const isRsa = opts.issuer.privateKey.asymmetricKeyType === 'rsa';
  const algId = isRsa ? seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) : seq(oid('1.2.840.10045.4.3.2'));
  const serial = randomBytes(8);
  serial[0]! &= 0x7f;
  serial[0]! |= 0x01;
  const basicConstraints = seq(
    oid('2.5.29.19'),
    tlv(0x01, Buffer.from([0xff])),
    tlv(0x04, opts.isCA ? seq(tlv(0x01, Buffer.from([0xff]))) : seq()),
  );
  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    algId,
    nameOf(opts.issuer.commonName),
    seq(derTime(opts.notBefore ?? new Date(now - 3600_000)), derTime(opts.notAfter ?? new Date(now + 365 * 86400_000))),
    nameOf(opts.commonName),
    opts.subject.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(basicConstraints)),
  );
  const signature = sign('sha256', tbs, { key: opts.issuer.privateKey, dsaEncoding: 'der' });
  const der = seq(tbs, algId, tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64');
  return { der, x5c: b64, pem: `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n` };
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
