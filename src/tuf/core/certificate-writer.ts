/**
 * Writing self-signed (or simply issued) X.509 certificates in DER: notary root certificates on
 * the client side, and the development token service's signing certificate. Pure: the validity
 * times and the serial number come in as arguments, so the same inputs give the same to-be-signed
 * bytes (the ECDSA signature itself is randomised).
 *
 * Written by hand rather than with a library so that the fields come out as Go's crypto/x509
 * writes them for notary (`tuf/utils/x509.go` NewCertificate, `cryptoservice/certificate.go`):
 * the string type of the common name, UTCTime vs GeneralizedTime, which extensions in which
 * order and which of them critical.
 */
import { sign, type KeyObject } from 'node:crypto';
import { bitString, boolean, derNull, derTime, directoryString, explicit, integer, octetString, oid, sequence, set, tlv } from './der.js';

const SIG_ALGS = {
  'ecdsa-sha256': { oid: '1.2.840.10045.4.3.2', hash: 'sha256', params: false },
  'ecdsa-sha1': { oid: '1.2.840.10045.4.1', hash: 'sha1', params: false },
  'rsa-sha256': { oid: '1.2.840.113549.1.1.11', hash: 'sha256', params: true },
  'rsa-sha1': { oid: '1.2.840.113549.1.1.5', hash: 'sha1', params: true },
} as const;

/** Bits of the KeyUsage extension (RFC 5280 §4.2.1.3), by bit number. */
const KEY_USAGE_BITS = {
  digitalSignature: 0,
  contentCommitment: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsage = keyof typeof KEY_USAGE_BITS;

const EXT_KEY_USAGE_OIDS = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2', codeSigning: '1.3.6.1.5.5.7.3.3' } as const;
export type ExtKeyUsage = keyof typeof EXT_KEY_USAGE_OIDS;

export interface CertificateFields {
  /** Subject common name. */
  commonName: string;
  /** Public key the certificate is about. */
  subject: KeyObject;
  /**
   * Who signs: the issuer's common name and private key (EC P-256 or RSA), the subject's own for
   * a self-signed one; or, for an ECDSA key that cannot leave a token, a function returning the
   * DER ECDSA signature of the SHA-256 digest of what it is given.
   */
  issuer: { commonName: string; privateKey: KeyObject } | { commonName: string; signEcdsaSha256: (tbs: Buffer) => Buffer };
  notBefore: Date;
  notAfter: Date;
  /** Big-endian magnitude of the (positive) serial number; written as a minimal DER INTEGER. */
  serial: Buffer;
  /** BasicConstraints cA; the extension is always present and critical. */
  isCA?: boolean;
  /** A critical KeyUsage extension with these bits. */
  keyUsage?: KeyUsage[];
  /** An ExtendedKeyUsage extension (not critical) with these purposes. */
  extKeyUsage?: ExtKeyUsage[];
  /** Signature hash of the certificate itself. */
  hash?: 'sha256' | 'sha1';
}

function algorithm(fields: CertificateFields): { id: Buffer; hash: string } {
  const isRsa = 'privateKey' in fields.issuer && fields.issuer.privateKey.asymmetricKeyType === 'rsa';
  const alg = SIG_ALGS[`${isRsa ? 'rsa' : 'ecdsa'}-${'privateKey' in fields.issuer ? (fields.hash ?? 'sha256') : 'sha256'}`];
  return { id: alg.params ? sequence(oid(alg.oid), derNull()) : sequence(oid(alg.oid)), hash: alg.hash };
}

const extension = (id: string, critical: boolean, value: Buffer) => sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));

/** KeyUsage as Go writes it: the bits in a BIT STRING trimmed after the last set bit. */
function keyUsageValue(usages: KeyUsage[]): Buffer {
  let bits = 0;
  for (const u of usages) bits |= 1 << KEY_USAGE_BITS[u];
  if (bits === 0) return bitString(Buffer.alloc(0));
  const highest = 31 - Math.clz32(bits); // bit numbers count from the most significant bit of byte 0
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (let b = 0; b <= highest; b++) if (bits & (1 << b)) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return bitString(bytes, bytes.length * 8 - (highest + 1));
}

/** The DER of the TBSCertificate (what the issuer signs). */
export function tbsCertificateDer(fields: CertificateFields): Buffer {
  const nameOf = (cn: string) => sequence(set(sequence(oid('2.5.4.3'), directoryString(cn))));
  // Go's order: KeyUsage, ExtKeyUsage, BasicConstraints.
  const extensions: Buffer[] = [];
  if (fields.keyUsage?.length) extensions.push(extension('2.5.29.15', true, keyUsageValue(fields.keyUsage)));
  if (fields.extKeyUsage?.length) extensions.push(extension('2.5.29.37', false, sequence(...fields.extKeyUsage.map((u) => oid(EXT_KEY_USAGE_OIDS[u])))));
  extensions.push(extension('2.5.29.19', true, fields.isCA ? sequence(boolean(true)) : sequence()));
  return sequence(
    explicit(0, integer(2)), // v3
    integer(fields.serial),
    algorithm(fields).id,
    nameOf(fields.issuer.commonName),
    sequence(derTime(fields.notBefore), derTime(fields.notAfter)),
    nameOf(fields.commonName),
    fields.subject.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, sequence(...extensions)),
  );
}

/** The DER of a certificate for `fields.subject`, signed by `fields.issuer`. */
export function issueCertificateDer(fields: CertificateFields): Buffer {
  const tbs = tbsCertificateDer(fields);
  const alg = algorithm(fields);
  const signature =
    'privateKey' in fields.issuer ? sign(alg.hash, tbs, { key: fields.issuer.privateKey, dsaEncoding: 'der' }) : fields.issuer.signEcdsaSha256(tbs);
  return sequence(tbs, alg.id, bitString(signature));
}

/** PEM of one certificate, in Go's 64-column encoding with a final newline. */
export function certificatePem(der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
