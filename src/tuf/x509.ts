/**
 * x509 certificates as notary uses them: root keys (and some delegation keys) are PEM bundles of
 * certificates, the leaf carrying the actual signing key (§2.9 of notary-protocol.md).
 *
 * Node's `X509Certificate` parses the certificate and hands out its public key, but it does not
 * expose the signature algorithm, prints the subject with RFC 2253 escaping and decides "is a CA"
 * with OpenSSL's looser heuristics. Notary decides on exactly those fields, so a small bounds-checked
 * DER reader extracts them the way Go's crypto/x509 sees them.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { decodeBase64, KeyError, loadVerifierKey, tufKeyId, type VerifierKey } from './keys.js';
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

// ---------------------------------------------------------------------------------------------
// Minimal DER reader

interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
}

function readTlv(buf: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new CertificateError('malformed certificate: truncated DER');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new CertificateError('malformed certificate: unsupported DER tag');
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // Certificates are far below 4 GiB; indefinite length (n = 0) is not DER.
    if (n === 0 || n > 4 || p + n > limit) throw new CertificateError('malformed certificate: bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  if (p + len > limit) throw new CertificateError('malformed certificate: DER length beyond data');
  return { tag, start: p, end: p + len };
}

/** The TLVs directly inside a constructed value. */
function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.start; pos < parent.end;) {
    const tlv = readTlv(buf, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) throw new CertificateError(`malformed certificate: expected ${what}`);
  return tlv;
}

function decodeOid(buf: Buffer, tlv: Tlv): string {
  const arcs: bigint[] = [];
  let value = 0n;
  let open = false;
  for (let p = tlv.start; p < tlv.end; p++) {
    const b = buf[p]!;
    value = (value << 7n) | BigInt(b & 0x7f);
    open = (b & 0x80) !== 0;
    if (!open) {
      arcs.push(value);
      value = 0n;
    }
  }
  if (open || arcs.length === 0) throw new CertificateError('malformed certificate: bad OID');
  // The first sub-identifier packs the first two arcs as 40 * first + second.
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/** ASN.1 string types Go's pkix.Name accepts as attribute values; others yield null (skipped). */
function decodeDirectoryString(buf: Buffer, tlv: Tlv): string | null {
  const bytes = buf.subarray(tlv.start, tlv.end);
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
  const signatureAlgorithmOid = decodeOid(der, expectTag(algFields[0], 0x06, 'signature algorithm OID'));

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
      if (!value || decodeOid(der, expectTag(type, 0x06, 'attribute OID')) !== OID_COMMON_NAME) continue;
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
      if (decodeOid(der, expectTag(parts[0], 0x06, 'extension OID')) !== OID_BASIC_CONSTRAINTS) continue;
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

function parseCertificateDer(der: Buffer): Certificate {
  const fields = readCertificateFields(der);
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

const SHA1_SIGNATURE_OIDS = new Set([
  '1.2.840.113549.1.1.5', // sha1WithRSAEncryption
  '1.2.840.10040.4.3', // dsaWithSHA1
  '1.2.840.10045.4.1', // ecdsaWithSHA1
]);
const DAY_MS = 24 * 60 * 60 * 1000;

/** notary's ValidateCertificate (tuf/utils/x509.go). Throws CertificateError. */
export function validateCertificate(cert: Certificate, opts: { checkExpiry: boolean; now: Date }): void {
  const cn = cert.commonName;
  if (cert.notBefore.getTime() > cert.notAfter.getTime()) {
    throw new CertificateError('certificate validity window is invalid');
  }
  if (SHA1_SIGNATURE_OIDS.has(cert.signatureAlgorithmOid)) {
    throw new CertificateError(`certificate with CN ${cn} uses invalid SHA1 signature algorithm`);
  }
  const type = cert.publicKey.asymmetricKeyType;
  if (type === 'rsa' || type === 'rsa-pss') {
    if ((cert.publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      throw new CertificateError('RSA bit length is too short');
    }
  }
  if (opts.checkExpiry) {
    // One day of leeway for a NotBefore in the future (clock skew at creation), none at expiry.
    const now = opts.now.getTime();
    if (cert.notBefore.getTime() > now + DAY_MS || now > cert.notAfter.getTime()) {
      throw new CertificateError(`certificate with CN ${cn} is expired`);
    }
  }
}

/** notary's MatchCNToGun: exact, or a trailing `*` making the rest a prefix of the GUN. */
function matchCnToGun(cn: string, gun: string): boolean {
  // strings.TrimRight(cn, "*") strips every trailing '*'.
  return cn.endsWith('*') ? gun.startsWith(cn.replace(/\*+$/, '')) : cn === gun;
}

/**
 * A root-role key as notary's ValidateRoot sees it (trustpinning/certs.go): the leaf certificate
 * for `gun`, under the key ID recomputed over Go's re-encoding of leaf + intermediates. A
 * signature only counts when its keyid equals that recomputed ID.
 */
export function loadRootCertificateKey(
  keytype: string,
  publicB64: string,
  gun: string,
  opts: { checkExpiry: boolean; now: Date },
): { key: VerifierKey } | { key: null; reason: string } {
  if (keytype !== 'ecdsa-x509' && keytype !== 'rsa-x509') {
    return { key: null, reason: `root keys must be x509 certificates, not ${keytype}` };
  }
  const pem = typeof publicB64 === 'string' ? decodeBase64(publicB64) : null;
  if (!pem) return { key: null, reason: 'public key is not valid base64' };
  try {
    const certs = parseCertificateBundle(pem.toString('latin1'));
    const leaves = certs.filter((c) => !c.isCA);
    if (leaves.length !== 1) return { key: null, reason: 'certificate bundle must hold exactly one leaf' };
    const leaf = certs[0]!;
    if (leaf.isCA) return { key: null, reason: 'the leaf certificate must come first' };
    if (!matchCnToGun(leaf.commonName, gun)) {
      return { key: null, reason: `certificate CN ${leaf.commonName} does not match ${gun}` };
    }
    validateCertificate(leaf, opts);
    // Like notary: for a new root, intermediates that fail validation (with expiry) are dropped;
    // for an old root (no expiry check) they are all kept unfiltered.
    const intermediates = certs
      .slice(1)
      .filter((c) => c.isCA)
      .filter((c) => !opts.checkExpiry || isValid(c, opts.now));
    const reencoded = Buffer.from(encodeCertificatesPem([leaf, ...intermediates]), 'latin1').toString('base64');
    return { key: loadVerifierKey(keytype, reencoded, tufKeyId(keytype, reencoded)) };
  } catch (err) {
    if (err instanceof CertificateError || err instanceof KeyError) return { key: null, reason: err.message };
    throw err;
  }
}

function isValid(cert: Certificate, now: Date): boolean {
  try {
    validateCertificate(cert, { checkExpiry: true, now });
    return true;
  } catch {
    return false;
  }
}
