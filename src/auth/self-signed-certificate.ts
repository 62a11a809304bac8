/**
 * Self-signed X.509 certificates built directly in DER: for the development token service's
 * signing certificate and for tests (which need arbitrary validity dates, hashes and CA flags).
 * Not for production PKI.
 */
import { randomBytes, sign, type KeyObject } from 'node:crypto';

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
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

const SIG_ALGS = {
  'ecdsa-sha256': { oid: '1.2.840.10045.4.3.2', hash: 'sha256', params: false },
  'ecdsa-sha1': { oid: '1.2.840.10045.4.1', hash: 'sha1', params: false },
  'rsa-sha256': { oid: '1.2.840.113549.1.1.11', hash: 'sha256', params: true },
  'rsa-sha1': { oid: '1.2.840.113549.1.1.5', hash: 'sha1', params: true },
} as const;

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
  const isRsa = opts.issuer.privateKey.asymmetricKeyType === 'rsa';
  const alg = SIG_ALGS[`${isRsa ? 'rsa' : 'ecdsa'}-${opts.hash ?? 'sha256'}`];
  const algId = alg.params ? seq(oid(alg.oid), Buffer.from([0x05, 0x00])) : seq(oid(alg.oid));
  const nameOf = (cn: string) => seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
  const serial = randomBytes(8);
  // A positive INTEGER in minimal DER: first byte 0x01-0x7f (a leading 0x00 would be non-canonical).
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const basicConstraints = seq(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, opts.isCA ? seq(tlv(0x01, Buffer.from([0xff]))) : seq()));
  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    algId,
    nameOf(opts.issuer.commonName),
    seq(derTime(opts.notBefore ?? new Date(now - 3600_000)), derTime(opts.notAfter ?? new Date(now + 10 * 365 * 86400_000))),
    nameOf(opts.commonName),
    opts.subject.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(basicConstraints)),
  );
  const signature = sign(alg.hash, tbs, { key: opts.issuer.privateKey, dsaEncoding: 'der' });
  return seq(tbs, algId, tlv(0x03, Buffer.from([0]), signature));
}

/** PEM of one certificate, in Go's 64-column encoding. */
export function certificatePem(der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** A self-signed certificate over `privateKey`/`publicKey` as PEM. */
export function selfSignedCertificate(privateKey: KeyObject, publicKey: KeyObject, opts: CertOptions): string {
  return certificatePem(issueCertificateDer({ ...opts, subject: publicKey, issuer: { commonName: opts.commonName, privateKey } }));
}
