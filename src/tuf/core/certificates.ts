/**
 * Reading x509 certificates: PEM bundles into the fields TUF keys and notary's rules look at.
 * Root keys (and some delegation keys) are PEM bundles of certificates, the leaf carrying the
 * actual signing key (§2.9 of notary-protocol.md); the rules about them are in notary/x509.ts.
 *
 * Our own DER code, because it must see certificates as Go does, byte for byte: Node's `X509Certificate` parses the certificate and hands out its public key, but it does not
 * expose the signature algorithm, prints the subject with RFC 2253 escaping and decides "is a CA"
 * with OpenSSL's looser heuristics. Notary decides on exactly those fields, so the bounds-checked
 * DER reader (der-reader.ts) extracts them the way Go's crypto/x509 sees them.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { decodeBase64 } from './base64.js';
import { children, contents, DerError, expectTag, readOid, readTlv, type Tlv } from './der-reader.js';
import { SignetError } from './signet-error.js';

export class CertificateError extends SignetError {
  readonly code = 'CERTIFICATE_INVALID';
  override name = 'CertificateError';
}

export interface Certificate {
  der: Buffer;
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
  signatureAlgorithmOid: string;
  publicKey: KeyObject;
  spkiDer: Buffer;
}

/** ASN.1 string types Go's pkix.Name accepts as attribute values; others yield null (skipped). */
function decodeDirectoryString(buf: Buffer, tlv: Tlv): string | null {
  const bytes = contents(buf, tlv);
  switch (tlv.tag) {
    case 0x0c: // UTF8String
      return bytes.toString('utf8');
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x14: // T61String (Go keeps the bytes as they are)
    case 0x16: // IA5String
      return bytes.toString('latin1');
    case 0x1e: // BMPString: UTF-16 big-endian
      return bytes.length % 2 === 0 ? Buffer.from(bytes).swap16().toString('utf16le') : null;
    default:
      return null;
  }
}

function decodeTime(buf: Buffer, tlv: Tlv): Date {
  const text = buf.toString('latin1', tlv.start, tlv.end);
  let m: RegExpMatchArray | null;
  let iso: string | null = null;
  if (tlv.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))) {
    // UTCTime: two-digit years 50..99 mean 19xx (RFC 5280 §4.1.2.5.1).
    const yy = Number(m[1]);
    iso = `${yy >= 50 ? 1900 + yy : 2000 + yy}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
  } else if (tlv.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.\d+)?Z$/.exec(text))) {
    iso = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
  }
  const ms = iso === null ? NaN : Date.parse(iso);
  if (Number.isNaN(ms)) throw new CertificateError(`malformed certificate: bad time ${JSON.stringify(text)}`);
  return new Date(ms);
}

const OID_COMMON_NAME = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';

/** Fields notary decides on, read straight from the certificate DER. */
function readCertificateFields(der: Buffer) {
  const cert = expectTag(readTlv(der, 0, der.length), 0x30, 'Certificate SEQUENCE');
  if (cert.end !== der.length) throw new CertificateError('malformed certificate: trailing data');
  const [tbs, sigAlg, sigValue, ...rest] = children(der, cert);
  expectTag(tbs, 0x30, 'tbsCertificate');
  expectTag(sigValue, 0x03, 'signature BIT STRING');
  if (rest.length) throw new CertificateError('malformed certificate: extra fields');
  const algFields = children(der, expectTag(sigAlg, 0x30, 'signatureAlgorithm'));
  const signatureAlgorithmOid = readOid(der, algFields[0], 'signature algorithm OID');

  // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serial, signature, issuer, validity,
  //                               subject, subjectPublicKeyInfo, [1], [2], [3] extensions }
  const fields = children(der, tbs!);
  let i = fields[0]?.tag === 0xa0 ? 1 : 0;
  expectTag(fields[i++], 0x02, 'serialNumber');
  expectTag(fields[i++], 0x30, 'tbs signature');
  expectTag(fields[i++], 0x30, 'issuer');
  const [notBefore, notAfter] = children(der, expectTag(fields[i++], 0x30, 'validity'));
  if (!notBefore || !notAfter) throw new CertificateError('malformed certificate: bad validity');
  const subject = expectTag(fields[i++], 0x30, 'subject');
  expectTag(fields[i++], 0x30, 'subjectPublicKeyInfo');

  // Go's pkix.Name keeps the last CN attribute when there are several.
  let commonName = '';
  for (const rdn of children(der, subject)) {
    for (const atv of children(der, expectTag(rdn, 0x31, 'RDN SET'))) {
      const [type, value] = children(der, expectTag(atv, 0x30, 'AttributeTypeAndValue'));
      if (!value || readOid(der, type, 'attribute OID') !== OID_COMMON_NAME) continue;
      commonName = decodeDirectoryString(der, value) ?? commonName;
    }
  }

  // Go's IsCA is the cA flag of BasicConstraints, nothing else.
  let isCA = false;
  const extsWrapper = fields.slice(i).find((f) => f.tag === 0xa3);
  if (extsWrapper) {
    const [exts] = children(der, extsWrapper);
    for (const ext of children(der, expectTag(exts, 0x30, 'extensions'))) {
      const parts = children(der, expectTag(ext, 0x30, 'extension'));
      if (readOid(der, parts[0], 'extension OID') !== OID_BASIC_CONSTRAINTS) continue;
      const octets = expectTag(parts[parts.length - 1], 0x04, 'extension value');
      const bc = expectTag(readTlv(der, octets.start, octets.end), 0x30, 'BasicConstraints');
      const [first] = children(der, bc);
      isCA = first?.tag === 0x01 && first.end > first.start && der[first.start] !== 0;
    }
  }

  return {
    signatureAlgorithmOid,
    commonName,
    isCA,
    notBefore: decodeTime(der, notBefore),
    notAfter: decodeTime(der, notAfter),
  };
}

/** The DER reader's faults in this file's words ('malformed certificate: …'). */
function certificateFields(der: Buffer): ReturnType<typeof readCertificateFields> {
  try {
    return readCertificateFields(der);
  } catch (err) {
    if (!(err instanceof DerError)) throw err;
    throw new CertificateError(`malformed certificate: ${err.fault === 'oid' ? 'bad OID' : err.message}`, { cause: err });
  }
}

function parseCertificateDer(der: Buffer): Certificate {
  const fields = certificateFields(der);
  let publicKey: KeyObject;
  try {
    // OpenSSL must accept the certificate too, and it gives us the key.
    publicKey = new X509Certificate(der).publicKey;
  } catch (err) {
    throw new CertificateError(`unparseable certificate: ${(err as Error).message}`);
  }
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  return { der, ...fields, publicKey, spkiDer };
}

// ---------------------------------------------------------------------------------------------
// PEM

/** Split PEM text into CERTIFICATE blocks (DER). Any non-CERTIFICATE block or garbage → CertificateError. */
export function parseCertificateBundle(pemText: string): Certificate[] {
  const certs: Certificate[] = [];
  let type: string | null = null; // inside a block of this type
  let body: string[] = [];
  for (const raw of pemText.split('\n')) {
    const line = raw.replace(/[ \t\r]+$/, '');
    if (type === null) {
      if (line === '') continue;
      const begin = /^-----BEGIN ([^-]+)-----$/.exec(line);
      if (!begin) throw new CertificateError('invalid PEM: text outside of a PEM block');
      if (begin[1] !== 'CERTIFICATE') throw new CertificateError(`invalid pem block type: ${begin[1]}`);
      type = begin[1];
      body = [];
    } else if (line === `-----END ${type}-----`) {
      const der = decodeBase64(body.join(''));
      if (!der || der.length === 0) throw new CertificateError('invalid PEM: bad base64 in CERTIFICATE block');
      certs.push(parseCertificateDer(der));
      type = null;
    } else {
      body.push(line);
    }
  }
  if (type !== null) throw new CertificateError('invalid PEM: unterminated block');
  if (certs.length === 0) throw new CertificateError('no valid certificates found');
  return certs;
}

/** Go's pem.EncodeToMemory of CERTIFICATE blocks, concatenated (key IDs are computed over this text). */
export function encodeCertificatesPem(certs: Certificate[]): string {
  return certs
    .map((cert) => {
      const lines = cert.der.toString('base64').match(/.{1,64}/g) ?? [];
      return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
    })
    .join('');
}

// ---------------------------------------------------------------------------------------------
// Validation
