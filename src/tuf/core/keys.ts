/**
 * Public keys as they appear in notary metadata, and signature checks with them
 * (notary `tuf/data/keys.go`, `tuf/signed/verifiers.go`; §2.8 and §2.10 of notary-protocol.md).
 *
 * Every check is as strict as notary's Go verifiers, so that anything this server accepts is also
 * accepted by notary and docker clients.
 */
import { constants, createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { decodeBase64 } from './base64.js';
import { CertificateError, parseCertificateBundle } from './certificates.js';
import { SignetError } from './signet-error.js';

export const KEY_TYPES = ['ecdsa', 'ecdsa-x509', 'rsa', 'rsa-x509', 'ed25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** Unsupported or invalid key material. */
export class KeyError extends SignetError {
  readonly code = 'KEY_INVALID';
  override name = 'KeyError';
}

/** A public key ready for signature checks. */
export interface VerifierKey {
  /** The TUF key ID it is listed under. */
  keyId: string;
  keytype: KeyType;
  /**
   * Hex sha256 of the SPKI DER of the underlying public key. Equal for the same key material
   * listed under two IDs or two keytypes, so that thresholds count distinct keys.
   */
  identity: string;
  publicKey: KeyObject;
  /** Never throws: false for a bad signature or an unsupported method/keytype combination. */
  verify(method: string, message: Buffer, signature: Buffer): boolean;
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** TUF key ID: lower-case hex sha256 of canonicalJson({keytype, keyval:{private:null, public}}). */
export function tufKeyId(keytype: string, publicB64: string): string {
  return sha256Hex(canonicalJson({ keytype, keyval: { private: null, public: publicB64 } }));
}

function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const P256_SPKI_LENGTH = 91; // named-curve P-256 SPKI with an uncompressed point

function spkiKey(der: Buffer): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (err) {
    throw new KeyError(`unparseable public key: ${(err as Error).message}`);
  }
  // Go's ParsePKIXPublicKey refuses trailing bytes and non-DER encodings; OpenSSL is laxer, so
  // insist that the bytes are exactly the key's canonical encoding.
  if (!key.export({ type: 'spki', format: 'der' }).equals(der)) {
    throw new KeyError('public key is not a canonical DER SubjectPublicKeyInfo');
  }
  return key;
}

/** `spki` is the key's canonical SPKI DER (exported once by the caller: exports are not cheap). */
function checkKeyMaterial(keytype: KeyType, key: KeyObject, spki: Buffer): void {
  const details = key.asymmetricKeyDetails ?? {};
  if (keytype === 'ecdsa' || keytype === 'ecdsa-x509') {
    if (key.asymmetricKeyType !== 'ec' || details.namedCurve !== 'prime256v1') {
      throw new KeyError(`${keytype} keys must be ECDSA P-256`);
    }
    if (spki.length !== P256_SPKI_LENGTH) {
      throw new KeyError('ECDSA public keys must use the uncompressed point form');
    }
  } else if (keytype === 'rsa' || keytype === 'rsa-x509') {
    // 'rsa-pss' SPKIs (id-RSASSA-PSS) cannot be parsed by Go and are refused as well.
    if (key.asymmetricKeyType !== 'rsa') throw new KeyError(`${keytype} keys must be RSA`);
    if ((details.modulusLength ?? 0) < 2048) throw new KeyError('RSA keys must be at least 2048 bits');
  }
}

/** The first PEM block's bytes, whatever its type (Go's pem.Decode as used by the PyCrypto verifier). */
function firstPemBlock(text: string): Buffer | null {
  const m = /-----BEGIN ([^-\r\n]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/.exec(text);
  return m ? decodeBase64(m[2]!.replace(/[\r\n]/g, '')) : null;
}

/**
 * Parse a key as found in metadata (keytype + base64 `keyval.public`). Throws KeyError.
 *
 * Encodings: ecdsa/rsa → DER SPKI; ed25519 → raw 32 bytes; *-x509 → PEM text of certificates,
 * the key being the first (leaf) certificate's. Legacy: an `rsa` key may also be PEM-wrapped SPKI;
 * notary then only accepts `pycrypto-pkcs#1 pss` signatures from it (and never from DER ones).
 */
export function loadVerifierKey(keytype: string, publicB64: string, keyId?: string): VerifierKey {
  // Every update checks signatures with the keys of the root and parent roles, mostly the same
  // ones: parsing them (certificates, SPKI export and comparison) is kept for the next time. A
  // pure function of its arguments, so the memo changes nothing but the cost; bounded by bytes.
  const memoKey = `${keytype}\0${keyId ?? ''}\0${publicB64}`;
  const known = verifierMemo.get(memoKey);
  if (known) return known;
  const key = parseVerifierKey(keytype, publicB64, keyId);
  verifierMemo.set(memoKey, key);
  verifierMemoBytes += memoKey.length;
  for (const [k] of verifierMemo) {
    if (verifierMemoBytes <= VERIFIER_MEMO_BYTES) break;
    verifierMemo.delete(k);
    verifierMemoBytes -= k.length;
  }
  return key;
}

/** Parsed keys by their listing; the oldest go first once their text exceeds the bound. */
const verifierMemo = new Map<string, VerifierKey>();
const VERIFIER_MEMO_BYTES = 2 * 1024 * 1024;
let verifierMemoBytes = 0;

function parseVerifierKey(keytype: string, publicB64: string, keyId?: string): VerifierKey {
  if (!isKeyType(keytype)) throw new KeyError(`unsupported key type ${JSON.stringify(keytype)}`);
  const raw = decodeBase64(publicB64);
  if (!raw) throw new KeyError('public key is not valid base64');

  let publicKey: KeyObject;
  // The canonical SPKI DER of the key: spkiKey checks the given bytes are exactly it.
  let spki: Buffer;
  let pemWrapped = false;
  if (keytype === 'ed25519') {
    if (raw.length !== 32) throw new KeyError('ed25519 public keys must be 32 bytes');
    spki = Buffer.concat([ED25519_SPKI_PREFIX, raw]);
    publicKey = spkiKey(spki);
  } else if (keytype === 'ecdsa-x509' || keytype === 'rsa-x509') {
    try {
      const leaf = parseCertificateBundle(raw.toString('latin1'))[0]!;
      publicKey = leaf.publicKey;
      spki = leaf.spkiDer;
    } catch (err) {
      if (err instanceof CertificateError) throw new KeyError(err.message);
      throw err;
    }
  } else if (keytype === 'rsa' && raw.subarray(0, 11).toString('latin1') === '-----BEGIN ') {
    const der = firstPemBlock(raw.toString('latin1'));
    if (!der) throw new KeyError('unparseable PEM public key');
    publicKey = spkiKey(der);
    spki = der;
    pemWrapped = true;
  } else {
    publicKey = spkiKey(raw);
    spki = raw;
  }
  checkKeyMaterial(keytype, publicKey, spki);

  return {
    keyId: keyId ?? tufKeyId(keytype, publicB64),
    keytype,
    identity: sha256Hex(spki),
    publicKey,
    verify: makeVerify(keytype, publicKey, pemWrapped),
  };
}

/** Which signature methods notary accepts from which key types (tuf/signed/verifiers.go). */
function makeVerify(keytype: KeyType, publicKey: KeyObject, pemWrapped: boolean): VerifierKey['verify'] {
  const rsaBytes = Math.ceil((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  // Go's RSA-PSS and PKCS#1 verifiers parse `rsa` keys as DER; only the PyCrypto one reads PEM.
  const rsaDer = keytype === 'rsa-x509' || (keytype === 'rsa' && !pemWrapped);

  const verifyRsa = (padding: number, message: Buffer, signature: Buffer): boolean =>
    // Go compares the signature length with the modulus size; OpenSSL would accept shorter ones.
    // saltLength is ignored for PKCS#1 v1.5 and must match exactly for PSS.
    signature.length === rsaBytes && cryptoVerify('sha256', message, { key: publicKey, padding, saltLength: 32 }, signature);

  const verifyWith = (method: string, message: Buffer, signature: Buffer): boolean => {
    switch (method) {
      case 'ecdsa':
        // Raw r‖s, 32 bytes each; DER-encoded ECDSA signatures are invalid for notary.
        return (
          (keytype === 'ecdsa' || keytype === 'ecdsa-x509') &&
          signature.length === 64 &&
          cryptoVerify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)
        );
      case 'rsapss':
        return rsaDer && verifyRsa(constants.RSA_PKCS1_PSS_PADDING, message, signature);
      case 'rsapkcs1v15':
        return rsaDer && verifyRsa(constants.RSA_PKCS1_PADDING, message, signature);
      case 'pycrypto-pkcs#1 pss':
        return keytype === 'rsa' && pemWrapped && verifyRsa(constants.RSA_PKCS1_PSS_PADDING, message, signature);
      case 'eddsa':
        return keytype === 'ed25519' && signature.length === 64 && cryptoVerify(null, message, publicKey, signature);
      default:
        return false;
    }
  };

  return (method, message, signature) => {
    try {
      if (typeof method !== 'string' || !Buffer.isBuffer(message) || !Buffer.isBuffer(signature)) return false;
      return verifyWith(method.toLowerCase(), message, signature);
    } catch {
      return false;
    }
  };
}

/**
 * Canonical key ID (§2.10): for *-x509 keys the TUF ID of the leaf certificate's bare public key
 * ({keytype: 'ecdsa' | 'rsa', public: base64(SPKI DER)}); otherwise the TUF key ID. This is the ID
 * clients show and name private key files after; the server itself only uses TUF IDs.
 * Throws KeyError for an x509 key whose certificates cannot be parsed.
 */
export function canonicalKeyId(keytype: string, publicB64: string): string {
  if (keytype !== 'ecdsa-x509' && keytype !== 'rsa-x509') return tufKeyId(keytype, publicB64);
  const pem = decodeBase64(publicB64);
  if (!pem) throw new KeyError('public key is not valid base64');
  let spki: Buffer;
  try {
    spki = parseCertificateBundle(pem.toString('latin1'))[0]!.spkiDer;
  } catch (err) {
    if (err instanceof CertificateError) throw new KeyError(err.message);
    throw err;
  }
  return tufKeyId(keytype === 'ecdsa-x509' ? 'ecdsa' : 'rsa', spki.toString('base64'));
}
