/**
 * Notary's rules for x509 keys (tuf/utils/x509.go, trustpinning/certs.go): which certificates are
 * acceptable, and a root-role key as notary's ValidateRoot sees it (CN = GUN, key ID recomputed
 * over Go's re-encoding of the bundle).
 */
import { decodeBase64 } from '../core/base64.js';
import { KeyError, loadVerifierKey, tufKeyId, type VerifierKey } from '../core/keys.js';
import { CertificateError, encodeCertificatesPem, parseCertificateBundle, type Certificate } from '../core/certificates.js';

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
