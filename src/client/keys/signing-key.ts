/**
 * Private signing keys in memory: generation, key IDs, the public key as metadata lists it, and
 * signatures as notary makes them (`tuf/data/keys.go`): `ecdsa` = raw r‖s over SHA-256, `eddsa`
 * for ed25519, `rsapss` (SHA-256, salt as long as the hash) for RSA keys read from elsewhere.
 *
 * The private KeyObject is kept out of the key object itself (a module-private WeakMap), so that
 * logging, inspecting or serialising a key shows no private material.
 */
import { constants, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { tufKeyId } from '../../tuf/core/keys.js';
import type { SignatureEntry } from '../../tuf/core/signatures.js';
import { KeyStoreError } from './errors.js';

/** Key types Signet generates. */
export type ClientKeyType = 'ecdsa' | 'ed25519';
/** Key types Signet signs with: also RSA, for keys made by other tools and loaded. */
export type SigningKeyType = ClientKeyType | 'rsa';

/** A public key as listed in metadata (`root.json` keys, delegations). */
export interface TufPublicKey {
  keytype: string;
  keyval: { public: string; private: null };
}

/** A private key with no role yet (freshly generated, or decoded from a file without headers). */
export interface KeyMaterial {
  /** Canonical key ID: the TUF ID of the plain public key; key files are named after it. */
  keyId: string;
  keytype: SigningKeyType;
  publicKey: KeyObject;
  /** TUF public key as listed in metadata. */
  tufPublic(): TufPublicKey;
  /**
   * A signature over `message` (the canonical JSON of `signed`), listed under `keyId` (the key's
   * own ID unless given: a root key signs as its certificate's `ecdsa-x509` ID).
   */
  sign(message: Buffer, keyId?: string): SignatureEntry;
}

/** A private key with the role (and, for targets, snapshot and timestamp keys, the GUN) it is stored for. */
export interface SigningKey extends KeyMaterial {
  role: string;
  gun?: string;
}

const privateKeys = new WeakMap<KeyMaterial, KeyObject>();

/** The private KeyObject behind a key made by this module (for the key file writer and certificates). */
export function privateKeyOf(key: KeyMaterial): KeyObject {
  const privateKey = privateKeys.get(key);
  if (!privateKey) throw new KeyStoreError('KEY_UNSUPPORTED', `key ${key.keyId} was not made by Signet's key module and holds no private key`);
  return privateKey;
}

/** The bytes notary lists as `keyval.public`: SPKI DER for ecdsa and rsa, the raw 32 bytes for ed25519. */
export function tufPublicBytes(keytype: SigningKeyType, publicKey: KeyObject): Buffer {
  if (keytype === 'ed25519') return Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return publicKey.export({ type: 'spki', format: 'der' });
}

function keytypeOf(privateKey: KeyObject, what: string): SigningKeyType {
  const details = privateKey.asymmetricKeyDetails ?? {};
  switch (privateKey.asymmetricKeyType) {
    case 'ec':
      if (details.namedCurve !== 'prime256v1')
        throw new KeyStoreError('KEY_UNSUPPORTED', `${what}: ECDSA keys must use the P-256 curve, not ${details.namedCurve}`);
      return 'ecdsa';
    case 'ed25519':
      return 'ed25519';
    case 'rsa':
      if ((details.modulusLength ?? 0) < 2048) throw new KeyStoreError('KEY_UNSUPPORTED', `${what}: RSA keys must be at least 2048 bits`);
      return 'rsa';
    default:
      throw new KeyStoreError('KEY_UNSUPPORTED', `${what}: unsupported key algorithm ${privateKey.asymmetricKeyType}`);
  }
}

function signatureFor(keytype: SigningKeyType, privateKey: KeyObject, message: Buffer): { method: string; sig: Buffer } {
  switch (keytype) {
    case 'ecdsa':
      return { method: 'ecdsa', sig: cryptoSign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }) };
    case 'ed25519':
      return { method: 'eddsa', sig: cryptoSign(null, message, privateKey) };
    case 'rsa':
      return { method: 'rsapss', sig: cryptoSign('sha256', message, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }) };
  }
}

/**
 * A key around a private KeyObject (EC P-256, Ed25519 or RSA ≥ 2048 bits). `role` set makes it a
 * SigningKey. Throws KEY_UNSUPPORTED for anything else; `what` names the source in that message.
 */
export function keyFromPrivate(privateKey: KeyObject, what?: string): KeyMaterial;
export function keyFromPrivate(privateKey: KeyObject, what: string, role: string, gun?: string): SigningKey;
export function keyFromPrivate(privateKey: KeyObject, what = 'key', role?: string, gun?: string): KeyMaterial | SigningKey {
  if (privateKey.type !== 'private') throw new KeyStoreError('KEY_UNSUPPORTED', `${what}: not a private key`);
  const keytype = keytypeOf(privateKey, what);
  const publicKey = createPublicKey(privateKey);
  const publicB64 = tufPublicBytes(keytype, publicKey).toString('base64');
  const keyId = tufKeyId(keytype, publicB64);
  const key: SigningKey | KeyMaterial = {
    keyId,
    keytype,
    publicKey,
    ...(role !== undefined ? { role, ...(gun ? { gun } : {}) } : {}),
    tufPublic: () => ({ keytype, keyval: { public: publicB64, private: null } }),
    sign(message: Buffer, asKeyId?: string): SignatureEntry {
      const { method, sig } = signatureFor(keytype, privateKey, message);
      return { keyid: asKeyId ?? keyId, method, sig: sig.toString('base64') };
    },
  };
  privateKeys.set(key, privateKey);
  return key;
}

/** The same key for a role (and GUN). */
export function withRole(key: KeyMaterial, role: string, gun?: string): SigningKey {
  return keyFromPrivate(privateKeyOf(key), 'key', role, gun);
}

/** A new key: ECDSA P-256 by default (what notary and docker generate), or Ed25519. */
export function generateSigningKey(keytype: ClientKeyType = 'ecdsa'): KeyMaterial {
  if (keytype !== 'ecdsa' && keytype !== 'ed25519') throw new KeyStoreError('KEY_UNSUPPORTED', `cannot generate keys of type ${JSON.stringify(keytype)}`);
  const { privateKey } = keytype === 'ecdsa' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : generateKeyPairSync('ed25519');
  return keyFromPrivate(privateKey);
}
