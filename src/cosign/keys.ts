/**
 * Cosign's key files, read and written so that keys made by `cosign generate-key-pair` sign in
 * Signet and keys Signet makes sign in cosign.
 *
 * - `cosign.pub`: PEM `PUBLIC KEY` (PKIX SubjectPublicKeyInfo); `RSA PUBLIC KEY` (PKCS#1) is read too.
 * - `cosign.key`: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (written; cosign's label since v2.0.1) or the
 *   older `ENCRYPTED COSIGN PRIVATE KEY` (read). The PEM body is go-securesystemslib's `encrypted`
 *   JSON: `{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}`
 *   with standard base64 for the byte fields, key = scrypt(password, salt, N, r=8, p=1, 32 bytes),
 *   and the secretbox opening to the PKCS#8 DER of the private key. We write the JSON ourselves in
 *   Go's field order (json.Marshal of its structs) so the file looks like cosign's byte for byte
 *   apart from the random salt and nonce; Node has no XSalsa20-Poly1305, so tweetnacl seals it.
 *
 * Only the scrypt costs cosign accepts are read (N = 2^15, 2^16, 2^17 with r = 8, p = 1); a file
 * asking for more would make the reader spend unbounded memory.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt, type KeyObject } from 'node:crypto';
import { decodePem, encodePem } from '../client/keys/pem.js';
import { KeyStoreError } from '../client/keys/errors.js';
import { CosignError } from './errors.js';

export const SIGSTORE_PRIVATE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_PRIVATE_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';
/** go-securesystemslib's standard cost, what `cosign generate-key-pair` uses. */
export const DEFAULT_SCRYPT_N = 65536;
const ACCEPTED_N = new Set([32768, 65536, 131072]);
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const MAX_KEY_FILE = 64 * 1024;
/** NaCl's secretbox nonce (24 bytes); tweetnacl itself is loaded when a private key is opened or sealed, so reading public keys stays light. */
const SECRETBOX_NONCE_LENGTH = 24;
const loadNacl = async () => (await import('tweetnacl')).default;

export type CosignKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'ed25519' | 'rsa';

/** The kind of a key as cosign sees it, or a KEY_UNSUPPORTED error. */
export function cosignKeyType(key: KeyObject, what: string): CosignKeyType {
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') return 'ed25519';
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new CosignError('KEY_UNSUPPORTED', `${what}: RSA keys below 2048 bits are not accepted (this one has ${bits})`);
    return 'rsa';
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ecdsa-p256';
    if (curve === 'secp384r1') return 'ecdsa-p384';
    if (curve === 'secp521r1') return 'ecdsa-p521';
    throw new CosignError('KEY_UNSUPPORTED', `${what}: ECDSA curve ${curve ?? 'unknown'} is not one cosign uses (P-256, P-384, P-521)`);
  }
  throw new CosignError('KEY_UNSUPPORTED', `${what}: ${type ?? 'unknown'} keys are not cosign keys (ECDSA, Ed25519, RSA)`);
}

function pemBlock(text: string, what: string) {
  try {
    return decodePem(text, what);
  } catch (error) {
    if (error instanceof KeyStoreError) throw new CosignError('KEY_UNREADABLE', error.message);
    throw error;
  }
}

/** A public key from `cosign.pub` text (or any PEM with one public key). */
export function readCosignPublicKey(pem: string | Buffer, what = 'public key'): KeyObject {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  if (text.length > MAX_KEY_FILE) throw new CosignError('KEY_UNREADABLE', `${what}: larger than ${MAX_KEY_FILE} bytes`);
  const block = pemBlock(text, what);
  if (!block) throw new CosignError('KEY_UNREADABLE', `${what}: no PEM block (expected -----BEGIN PUBLIC KEY-----)`);
  let key: KeyObject;
  try {
    if (block.type === 'PUBLIC KEY') key = createPublicKey({ key: block.bytes, format: 'der', type: 'spki' });
    else if (block.type === 'RSA PUBLIC KEY') key = createPublicKey({ key: block.bytes, format: 'der', type: 'pkcs1' });
    else throw new CosignError('KEY_UNREADABLE', `${what}: a PEM block of type "${block.type}", not a public key`);
  } catch (error) {
    if (error instanceof CosignError) throw error;
    throw new CosignError('KEY_UNREADABLE', `${what}: the PEM block is not a valid public key`);
  }
  cosignKeyType(key, what);
  return key;
}

/** `cosign.pub` text: PEM `PUBLIC KEY`, as cryptoutils.MarshalPublicKeyToPEM writes it. */
export function cosignPublicKeyPem(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return encodePem({ type: 'PUBLIC KEY', headers: {}, bytes: pub.export({ type: 'spki', format: 'der' }) });
}

function deriveKey(password: string, salt: Buffer, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(Buffer.from(password, 'utf8'), salt, 32, { N: n, r: SCRYPT_R, p: SCRYPT_P, maxmem: 256 * n * SCRYPT_R }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

interface EncryptedKeyJson {
  kdf?: { name?: unknown; params?: { N?: unknown; r?: unknown; p?: unknown }; salt?: unknown };
  cipher?: { name?: unknown; nonce?: unknown };
  ciphertext?: unknown;
}

function base64Field(value: unknown, what: string, field: string, length?: number): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw new CosignError('KEY_UNREADABLE', `${what}: "${field}" is not base64`);
  }
  const bytes = Buffer.from(value, 'base64');
  if (length !== undefined && bytes.length !== length) throw new CosignError('KEY_UNREADABLE', `${what}: "${field}" is ${bytes.length} bytes, not ${length}`);
  return bytes;
}

/** Whether a file's text is a Cosign encrypted private key (by its PEM label). */
export function isCosignPrivateKey(text: string): boolean {
  return text.includes(`-----BEGIN ${SIGSTORE_PRIVATE_KEY_PEM}-----`) || text.includes(`-----BEGIN ${COSIGN_PRIVATE_KEY_PEM}-----`);
}

/** The private key in `cosign.key` text, opened with `password` (cosign allows an empty one). */
export async function readCosignPrivateKey(pem: string | Buffer, password: string, what = 'cosign private key'): Promise<KeyObject> {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  if (text.length > MAX_KEY_FILE) throw new CosignError('KEY_UNREADABLE', `${what}: larger than ${MAX_KEY_FILE} bytes`);
  const block = pemBlock(text, what);
  if (!block) throw new CosignError('KEY_UNREADABLE', `${what}: no PEM block (expected -----BEGIN ${SIGSTORE_PRIVATE_KEY_PEM}-----)`);
  if (block.type !== SIGSTORE_PRIVATE_KEY_PEM && block.type !== COSIGN_PRIVATE_KEY_PEM) {
    throw new CosignError(
      'KEY_UNREADABLE',
      `${what}: a PEM block of type "${block.type}"; cosign keys are "${SIGSTORE_PRIVATE_KEY_PEM}" or "${COSIGN_PRIVATE_KEY_PEM}"`,
    );
  }
  let json: EncryptedKeyJson;
  try {
    json = JSON.parse(block.bytes.toString('utf8')) as EncryptedKeyJson;
  } catch {
    throw new CosignError('KEY_UNREADABLE', `${what}: the PEM body is not cosign's encrypted-key JSON`);
  }
  if (typeof json !== 'object' || json === null) throw new CosignError('KEY_UNREADABLE', `${what}: the PEM body is not cosign's encrypted-key JSON`);
  const { kdf, cipher } = json;
  if (kdf?.name !== 'scrypt') throw new CosignError('KEY_UNSUPPORTED', `${what}: key derivation ${JSON.stringify(kdf?.name)} (cosign uses scrypt)`);
  if (cipher?.name !== 'nacl/secretbox')
    throw new CosignError('KEY_UNSUPPORTED', `${what}: cipher ${JSON.stringify(cipher?.name)} (cosign uses nacl/secretbox)`);
  const n = kdf.params?.N;
  if (typeof n !== 'number' || !ACCEPTED_N.has(n) || kdf.params?.r !== SCRYPT_R || kdf.params?.p !== SCRYPT_P) {
    throw new CosignError(
      'KEY_UNSUPPORTED',
      `${what}: scrypt parameters ${JSON.stringify(kdf.params)} are not ones cosign accepts (N 32768, 65536 or 131072; r 8; p 1)`,
    );
  }
  const salt = base64Field(kdf.salt, what, 'kdf.salt');
  const nonce = base64Field(cipher.nonce, what, 'cipher.nonce', SECRETBOX_NONCE_LENGTH);
  const ciphertext = base64Field(json.ciphertext, what, 'ciphertext');
  const [secret, nacl] = await Promise.all([deriveKey(password, salt, n), loadNacl()]);
  const opened = nacl.secretbox.open(ciphertext, nonce, secret);
  secret.fill(0);
  if (!opened) throw new CosignError('PASSWORD_WRONG', `${what}: the password does not open it`);
  const der = Buffer.from(opened);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    throw new CosignError('KEY_UNREADABLE', `${what}: opened, but the content is not a PKCS#8 private key`);
  } finally {
    der.fill(0);
    opened.fill(0);
  }
  cosignKeyType(key, what);
  return key;
}

/** `cosign.key` text for `key`, sealed with `password` (scrypt N = 2^16 unless told). */
export async function writeCosignPrivateKey(key: KeyObject, password: string, options: { scryptN?: number } = {}): Promise<string> {
  cosignKeyType(key, 'private key');
  const n = options.scryptN ?? DEFAULT_SCRYPT_N;
  if (!ACCEPTED_N.has(n)) throw new CosignError('BAD_INPUT', `scrypt N ${n} is not one cosign reads (32768, 65536, 131072)`);
  const salt = randomBytes(32);
  const nonce = randomBytes(SECRETBOX_NONCE_LENGTH);
  const [secret, nacl] = await Promise.all([deriveKey(password, salt, n), loadNacl()]);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const sealed = Buffer.from(nacl.secretbox(der, nonce, secret));
  secret.fill(0);
  der.fill(0);
  // Go's json.Marshal of go-securesystemslib's structs: these fields, in this order, compact.
  const json = JSON.stringify({
    kdf: { name: 'scrypt', params: { N: n, r: SCRYPT_R, p: SCRYPT_P }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: sealed.toString('base64'),
  });
  return encodePem({ type: SIGSTORE_PRIVATE_KEY_PEM, headers: {}, bytes: Buffer.from(json, 'utf8') });
}

export interface CosignKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** `cosign.key` text. */
  privatePem: string;
  /** `cosign.pub` text. */
  publicPem: string;
}

/** A new ECDSA P-256 pair, as `cosign generate-key-pair` makes. */
export async function generateCosignKeyPair(password: string, options: { scryptN?: number } = {}): Promise<CosignKeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, privatePem: await writeCosignPrivateKey(privateKey, password, options), publicPem: cosignPublicKeyPem(publicKey) };
}
