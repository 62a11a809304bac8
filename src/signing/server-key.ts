/**
 * Server-held signing keys: generation and signing, in the formats notary clients expect.
 * ed25519 keys sign with method `eddsa` (public = raw 32 bytes); ECDSA P-256 keys sign with
 * method `ecdsa` (raw r‖s; public = SPKI DER), both base64 in metadata.
 */
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { tufKeyId } from '../tuf/core/keys.js';
import type { ServerSigningKey } from '../tuf/notary/generate.js';
import type { SignatureEntry } from '../tuf/core/signatures.js';

export type ServerKeyAlgorithm = 'ed25519' | 'ecdsa';

export interface GeneratedKey {
  keyId: string;
  keytype: ServerKeyAlgorithm;
  publicKey: string;
  /** PKCS#8 DER: encrypt before it leaves memory. */
  privateDer: Buffer;
}

export function publicKeyText(keytype: ServerKeyAlgorithm, publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // An ed25519 SPKI is a fixed 12-byte header followed by the raw 32-byte key.
  return (keytype === 'ed25519' ? spki.subarray(spki.length - 32) : spki).toString('base64');
}

export function generateServerKey(keytype: ServerKeyAlgorithm): GeneratedKey {
  const { publicKey, privateKey } = keytype === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicText = publicKeyText(keytype, publicKey);
  return {
    keyId: tufKeyId(keytype, publicText),
    keytype,
    publicKey: publicText,
    privateDer: privateKey.export({ type: 'pkcs8', format: 'der' }),
  };
}

export function signWith(keytype: string, privateKey: KeyObject, keyId: string, message: Buffer): SignatureEntry {
  if (keytype === 'ed25519') {
    return { keyid: keyId, method: 'eddsa', sig: sign(null, message, privateKey).toString('base64') };
  }
  return {
    keyid: keyId,
    method: 'ecdsa',
    sig: sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64'),
  };
}

/** A ready-to-sign key from its decrypted PKCS#8 bytes. */
export function signingKey(keyId: string, role: 'snapshot' | 'timestamp', keytype: string, privateDer: Buffer): ServerSigningKey {
  const privateKey = createPrivateKey({ key: privateDer, format: 'der', type: 'pkcs8' });
  return { keyId, role, sign: (message) => signWith(keytype, privateKey, keyId, message) };
}

/** notary's JSON for a public key answer: struct order, `private` null. */
export function publicKeyJson(keytype: string, publicKey: string): string {
  return JSON.stringify({ keytype, keyval: { public: publicKey, private: null } });
}
