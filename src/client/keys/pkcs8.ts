/**
 * Private key files as notary and `docker trust` write them (notary `tuf/utils/pkcs8.go`,
 * `tuf/utils/x509.go` ConvertPrivateKeyToPKCS8): a PEM block `ENCRYPTED PRIVATE KEY` with
 * `role` and `gun` headers around an EncryptedPrivateKeyInfo: PBES2, PBKDF2 with HMAC-SHA1 (the
 * default PRF, so no prf field), an 8-byte salt, 2048 iterations, AES-256-CBC with a 16-byte IV,
 * PKCS#7 padding. Inside, notary's own PrivateKeyInfo: for ECDSA version 1, algorithm
 * [ecPublicKey, prime256v1] and the SEC1 ECPrivateKey (with its curve and public key); for
 * ed25519 version 0, notary's OID 1.3.6.1.4.1.11591.15.1 and notary's 96-byte private key
 * (public ‖ seed ‖ public); for RSA version 0, [rsaEncryption] (no NULL) and the PKCS#1 key.
 *
 * Hand-written DER, because the files must match what Go writes byte for byte: Node's encrypted
 * PKCS#8 export uses HMAC-SHA256 as the PRF (which notary's reader ignores, deriving a wrong key),
 * writes version 0 and leaves the curve out of the inner SEC1 key, and knows nothing of notary's
 * ed25519 encoding.
 *
 * Reading accepts notary's files and also the standard forms other tools write for `key load`:
 * PKCS#8 encrypted (PBES2 with any HMAC-SHA PRF and AES-CBC ourselves, anything else via OpenSSL)
 * or not, SEC1 `EC PRIVATE KEY` and PKCS#1 `RSA PRIVATE KEY` (legacy `DEK-Info` encryption too),
 * standard Ed25519 PKCS#8.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, pbkdf2Sync, randomBytes, type KeyObject } from 'node:crypto';
import { integer, octetString, oid, sequence } from '../../tuf/core/der.js';
import { children, contents, DerError, expectTag, readOctetString, readOid, readSmallInteger, readTlv } from '../../tuf/core/der-reader.js';
import { KeyStoreError } from './errors.js';
import { decodePem, encodePem, type PemBlock } from './pem.js';
import { keyFromPrivate, privateKeyOf, tufPublicBytes, type KeyMaterial } from './signing-key.js';

const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  aes128cbc: '2.16.840.1.101.3.4.1.2',
  aes192cbc: '2.16.840.1.101.3.4.1.22',
  aes256cbc: '2.16.840.1.101.3.4.1.42',
  hmacWithSHA1: '1.2.840.113549.2.7',
  hmacWithSHA224: '1.2.840.113549.2.8',
  hmacWithSHA256: '1.2.840.113549.2.9',
  hmacWithSHA384: '1.2.840.113549.2.10',
  hmacWithSHA512: '1.2.840.113549.2.11',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  rsaEncryption: '1.2.840.113549.1.1.1',
  notaryEd25519: '1.3.6.1.4.1.11591.15.1',
} as const;

const CIPHERS: Record<string, { name: string; keyLength: number }> = {
  [OID.aes128cbc]: { name: 'aes-128-cbc', keyLength: 16 },
  [OID.aes192cbc]: { name: 'aes-192-cbc', keyLength: 24 },
  [OID.aes256cbc]: { name: 'aes-256-cbc', keyLength: 32 },
};
const PRFS: Record<string, string> = {
  [OID.hmacWithSHA1]: 'sha1',
  [OID.hmacWithSHA224]: 'sha224',
  [OID.hmacWithSHA256]: 'sha256',
  [OID.hmacWithSHA384]: 'sha384',
  [OID.hmacWithSHA512]: 'sha512',
};

/** Notary's parameters (convertTUFKeyToPKCS8Encrypted). */
export const NOTARY_PBKDF2_ITERATIONS = 2048;
const SALT_LENGTH = 8;
const IV_LENGTH = 16;
/** Far above any tool's default; a file asking for more is refused rather than left to spin. */
const MAX_ITERATIONS = 10_000_000;

// Reading DER is src/tuf/core/der-reader.ts. Any malformation is a DerError, which the functions
// below turn into the right KeyStoreError (KEY_UNREADABLE for a plain file, PASSPHRASE_WRONG
// after decryption).

// ---------------------------------------------------------------------------------------------
// Writing

function notaryPrivateKeyInfo(key: KeyMaterial): Buffer {
  const privateKey = privateKeyOf(key);
  switch (key.keytype) {
    case 'ecdsa':
      // Go's x509.MarshalECPrivateKey: version 1, the 32-byte scalar, [0] curve, [1] public point; OpenSSL's sec1 export is the same.
      return sequence(integer(1), sequence(oid(OID.ecPublicKey), oid(OID.prime256v1)), octetString(privateKey.export({ type: 'sec1', format: 'der' })));
    case 'ed25519': {
      const pub = tufPublicBytes('ed25519', key.publicKey);
      const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
      return sequence(integer(0), sequence(oid(OID.notaryEd25519)), octetString(Buffer.concat([pub, seed, pub])));
    }
    case 'rsa':
      return sequence(integer(0), sequence(oid(OID.rsaEncryption)), octetString(privateKey.export({ type: 'pkcs1', format: 'der' })));
  }
}

export interface EncryptionParameters {
  /** 8 bytes; random unless given (tests reproduce a file byte for byte with the salt and IV it used). */
  salt?: Buffer;
  /** 16 bytes; random unless given. */
  iv?: Buffer;
}

/** notary's EncryptedPrivateKeyInfo DER for `key` under `passphrase`. */
export function encryptNotaryPrivateKey(key: KeyMaterial, passphrase: string, params: EncryptionParameters = {}): Buffer {
  const salt = params.salt ?? randomBytes(SALT_LENGTH);
  const iv = params.iv ?? randomBytes(IV_LENGTH);
  if (salt.length !== SALT_LENGTH || iv.length !== IV_LENGTH) throw new RangeError('notary uses an 8-byte salt and a 16-byte IV');
  const symmetricKey = pbkdf2Sync(Buffer.from(passphrase, 'utf8'), salt, NOTARY_PBKDF2_ITERATIONS, 32, 'sha1');
  const cipher = createCipheriv('aes-256-cbc', symmetricKey, iv); // PKCS#7 padding, as notary pads by hand
  const encrypted = Buffer.concat([cipher.update(notaryPrivateKeyInfo(key)), cipher.final()]);
  return sequence(
    sequence(
      oid(OID.pbes2),
      sequence(sequence(oid(OID.pbkdf2), sequence(octetString(salt), integer(NOTARY_PBKDF2_ITERATIONS))), sequence(oid(OID.aes256cbc), octetString(iv))),
    ),
    octetString(encrypted),
  );
}

/** The headers notary writes: `role` unless empty, `gun` unless empty. */
function keyHeaders(role: string, gun?: string): Record<string, string> {
  return { ...(role ? { role } : {}), ...(gun ? { gun } : {}) };
}

/**
 * A key file's text, as notary's ConvertPrivateKeyToPKCS8 writes it: `ENCRYPTED PRIVATE KEY` with
 * `gun` and `role` headers (sorted, as Go's PEM encoder writes them). An empty passphrase is
 * refused: Signet never writes an unencrypted key file.
 */
export function encodeNotaryPrivateKeyPem(key: KeyMaterial, info: { role: string; gun?: string }, passphrase: string, params?: EncryptionParameters): string {
  if (!passphrase) throw new KeyStoreError('PASSPHRASE_REQUIRED', `no passphrase to encrypt the ${info.role || 'new'} key ${key.keyId} with`);
  return encodePem({ type: 'ENCRYPTED PRIVATE KEY', headers: keyHeaders(info.role, info.gun), bytes: encryptNotaryPrivateKey(key, passphrase, params) });
}

/** An unencrypted `PRIVATE KEY` block in notary's PKCS#8 (what `notary key export` of a decrypted key, or `docker trust key load`, reads). */
export function encodeNotaryPlainPrivateKeyPem(key: KeyMaterial, info: { role: string; gun?: string }): string {
  return encodePem({ type: 'PRIVATE KEY', headers: keyHeaders(info.role, info.gun), bytes: notaryPrivateKeyInfo(key) });
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface DecodedPrivateKey {
  key: KeyMaterial;
  /** The `role` header, if any. */
  role?: string;
  /** The `gun` header, if any. */
  gun?: string;
  /** Whether the file was encrypted. */
  encrypted: boolean;
}

/** The PEM types read as private keys (notary's parsePEMPrivateKey). */
export const PRIVATE_KEY_PEM_TYPES = ['ENCRYPTED PRIVATE KEY', 'PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY', 'ED25519 PRIVATE KEY'] as const;

/** Whether a decoded block would need a passphrase. */
export function isEncryptedBlock(block: PemBlock): boolean {
  return block.type === 'ENCRYPTED PRIVATE KEY' || 'DEK-Info' in block.headers;
}

/** An Ed25519 key from notary's 96 bytes (public ‖ seed ‖ public), checking that they agree. */
function notaryEd25519(bytes: Buffer): KeyObject {
  if (bytes.length !== 96) throw new DerError('an ed25519 key must be 96 bytes in notary’s encoding');
  const seed = bytes.subarray(32, 64);
  const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const pub = Buffer.from(privateKey.export({ format: 'jwk' }).x!, 'base64url');
  if (!pub.equals(bytes.subarray(0, 32)) || !pub.equals(bytes.subarray(64))) throw new DerError('ed25519 public and private halves do not match');
  return privateKey;
}

/** A PrivateKeyInfo (notary's or standard) as a KeyObject. Throws DerError or Node's error. */
function parsePrivateKeyInfo(der: Buffer): KeyObject {
  const top = readTlv(der, 0, der.length);
  const [version, algorithm, privateKey] = children(der, expectTag(top, 0x30, 'a PrivateKeyInfo'));
  readSmallInteger(der, version);
  const algId = readOid(der, children(der, expectTag(algorithm, 0x30, 'an AlgorithmIdentifier'))[0]);
  const keyBytes = readOctetString(der, privateKey, 'the private key OCTET STRING');
  if (algId === OID.notaryEd25519) return notaryEd25519(keyBytes);
  // notary's RSA has no NULL parameters, which OpenSSL may refuse: read the PKCS#1 key inside.
  if (algId === OID.rsaEncryption) return createPrivateKey({ key: keyBytes, format: 'der', type: 'pkcs1' });
  return createPrivateKey({ key: der.subarray(0, top.end), format: 'der', type: 'pkcs8' });
}

/**
 * Decrypt an EncryptedPrivateKeyInfo: PBES2 + PBKDF2 (HMAC-SHA1/224/256/384/512) + AES-CBC here,
 * which covers notary, docker and OpenSSL's defaults; other schemes (PBES1, scrypt) via OpenSSL.
 * Returns the inner PrivateKeyInfo DER, or for the OpenSSL path the key itself.
 */
function decryptPrivateKeyInfo(der: Buffer, passphrase: string, what: string): Buffer | KeyObject {
  let scheme: {
    cipher: { name: string; keyLength: number };
    iv: Buffer;
    salt: Buffer;
    iterations: number;
    prf: string;
    keyLength?: number;
    data: Buffer;
  } | null = null;
  try {
    const top = expectTag(readTlv(der, 0, der.length), 0x30, 'an EncryptedPrivateKeyInfo');
    const [algorithm, data] = children(der, top);
    const [algOid, algParams] = children(der, expectTag(algorithm, 0x30, 'an AlgorithmIdentifier'));
    if (readOid(der, algOid) === OID.pbes2) {
      const [kdf, enc] = children(der, expectTag(algParams, 0x30, 'PBES2 parameters'));
      const [kdfOid, kdfParams] = children(der, expectTag(kdf, 0x30, 'a key derivation function'));
      const [encOid, ivTlv] = children(der, expectTag(enc, 0x30, 'an encryption scheme'));
      const cipher = CIPHERS[readOid(der, encOid)];
      if (readOid(der, kdfOid) === OID.pbkdf2 && cipher && ivTlv?.tag === 0x04) {
        const [saltTlv, iterTlv, ...rest] = children(der, expectTag(kdfParams, 0x30, 'PBKDF2 parameters'));
        let keyLength: number | undefined;
        let prf = 'sha1';
        for (const field of rest) {
          if (field.tag === 0x02) keyLength = readSmallInteger(der, field);
          else if (field.tag === 0x30) {
            const p = PRFS[readOid(der, children(der, field)[0])];
            if (!p) throw new DerError('unsupported PBKDF2 PRF');
            prf = p;
          }
        }
        scheme = {
          cipher,
          iv: contents(der, ivTlv),
          salt: readOctetString(der, saltTlv, 'a PBKDF2 salt'),
          iterations: readSmallInteger(der, iterTlv),
          prf,
          ...(keyLength !== undefined ? { keyLength } : {}),
          data: readOctetString(der, data, 'the encrypted data'),
        };
      }
    }
  } catch (err) {
    if (!(err instanceof DerError)) throw err;
    throw new KeyStoreError('KEY_UNREADABLE', `${what}: malformed encrypted private key (${err.message})`);
  }

  if (!scheme) {
    try {
      return createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase: Buffer.from(passphrase, 'utf8') });
    } catch {
      throw new KeyStoreError('PASSPHRASE_WRONG', `${what}: the passphrase does not decrypt this key (or its encryption scheme is not supported)`);
    }
  }
  if (scheme.iterations < 1 || scheme.iterations > MAX_ITERATIONS)
    throw new KeyStoreError('KEY_UNREADABLE', `${what}: PBKDF2 iteration count ${scheme.iterations} out of range`);
  if (
    scheme.iv.length !== 16 ||
    (scheme.keyLength !== undefined && scheme.keyLength !== scheme.cipher.keyLength) ||
    scheme.data.length % 16 !== 0 ||
    scheme.data.length === 0
  ) {
    throw new KeyStoreError('KEY_UNREADABLE', `${what}: malformed encrypted private key (bad IV, key length or data length)`);
  }
  const symmetricKey = pbkdf2Sync(Buffer.from(passphrase, 'utf8'), scheme.salt, scheme.iterations, scheme.cipher.keyLength, scheme.prf);
  try {
    const decipher = createDecipheriv(scheme.cipher.name, symmetricKey, scheme.iv);
    return Buffer.concat([decipher.update(scheme.data), decipher.final()]); // final() checks the padding
  } catch {
    throw new KeyStoreError('PASSPHRASE_WRONG', `${what}: the passphrase does not decrypt this key`);
  }
}

function legacyPem(block: PemBlock): string {
  const headers: Record<string, string> = {};
  for (const name of ['Proc-Type', 'DEK-Info']) if (block.headers[name] !== undefined) headers[name] = block.headers[name]!;
  return encodePem({ type: block.type, headers, bytes: block.bytes });
}

/**
 * A private key from a PEM text (the first block in it). `passphrase` is needed for encrypted
 * keys and ignored for others; `what` names the source in errors (say the file's path).
 * Throws KeyStoreError: KEY_UNREADABLE, PASSPHRASE_REQUIRED, PASSPHRASE_WRONG, KEY_UNSUPPORTED.
 */
export function decodePrivateKeyPem(pem: string | Buffer, passphrase?: string, what = 'private key'): DecodedPrivateKey {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const block = decodePem(text, what);
  if (!block) throw new KeyStoreError('KEY_UNREADABLE', `${what}: no PEM block found`);
  if (!(PRIVATE_KEY_PEM_TYPES as readonly string[]).includes(block.type))
    throw new KeyStoreError('KEY_UNREADABLE', `${what}: a "${block.type}" PEM block is not a private key`);
  const encrypted = isEncryptedBlock(block);
  if (encrypted && !passphrase) throw new KeyStoreError('PASSPHRASE_REQUIRED', `${what}: the key is encrypted and no passphrase was given`);

  let privateKey: KeyObject;
  if (block.type === 'ENCRYPTED PRIVATE KEY') {
    const inner = decryptPrivateKeyInfo(block.bytes, passphrase!, what);
    if (Buffer.isBuffer(inner)) {
      try {
        privateKey = parsePrivateKeyInfo(inner);
      } catch {
        // Notary decides the same way: the right padding by chance, but no key inside.
        throw new KeyStoreError('PASSPHRASE_WRONG', `${what}: the passphrase does not decrypt this key`);
      }
    } else privateKey = inner;
  } else {
    try {
      if (block.type === 'PRIVATE KEY') privateKey = parsePrivateKeyInfo(block.bytes);
      else if (block.type === 'ED25519 PRIVATE KEY') privateKey = notaryEd25519(block.bytes);
      else if (encrypted) privateKey = createPrivateKey({ key: legacyPem(block), format: 'pem', passphrase: Buffer.from(passphrase!, 'utf8') });
      else privateKey = createPrivateKey({ key: block.bytes, format: 'der', type: block.type === 'EC PRIVATE KEY' ? 'sec1' : 'pkcs1' });
    } catch (err) {
      if (encrypted) throw new KeyStoreError('PASSPHRASE_WRONG', `${what}: the passphrase does not decrypt this key`);
      const reason = err instanceof DerError ? err.message : 'not a valid key';
      throw new KeyStoreError('KEY_UNREADABLE', `${what}: malformed ${block.type} (${reason})`);
    }
  }
  const role = block.headers['role'] || undefined;
  const gun = block.headers['gun'] || undefined;
  return { key: keyFromPrivate(privateKey, what), ...(role ? { role } : {}), ...(gun ? { gun } : {}), encrypted };
}

/** The role and GUN headers of a key file and whether it is encrypted, without decrypting it (notary's ExtractPrivateKeyAttributes). */
export function readPrivateKeyHeaders(pem: string | Buffer, what = 'private key'): { role?: string; gun?: string; encrypted: boolean } {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const block = decodePem(text, what);
  if (!block) throw new KeyStoreError('KEY_UNREADABLE', `${what}: no PEM block found`);
  if (!(PRIVATE_KEY_PEM_TYPES as readonly string[]).includes(block.type))
    throw new KeyStoreError('KEY_UNREADABLE', `${what}: a "${block.type}" PEM block is not a private key`);
  const role = block.headers['role'] || undefined;
  const gun = block.headers['gun'] || undefined;
  return { ...(role ? { role } : {}), ...(gun ? { gun } : {}), encrypted: isEncryptedBlock(block) };
}
