/**
 * notary-signer's private key bytes → the PKCS#8 DER Signet stores (encrypted) in server_keys.
 *
 * notary serialises (tuf/utils/x509.go, tuf/data/keys.go):
 * - ecdsa: SEC1 `ECPrivateKey` DER (x509.MarshalECPrivateKey), P-256; public = SPKI DER;
 * - ed25519: 32-byte public key ‖ Go's 64-byte private key (32-byte seed ‖ public); public = the
 *   raw 32 bytes.
 * The public key is recomputed from the private one, so a row whose halves disagree is caught.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { SignetError } from '../tuf/core/signet-error.js';

export class PrivateKeyError extends SignetError {
  readonly code = 'IMPORT_PRIVATE_KEY';
  override name = 'PrivateKeyError';
}

export interface ConvertedKey {
  keytype: 'ecdsa' | 'ed25519';
  /** PKCS#8 DER; the caller encrypts it and then zeroes it. */
  pkcs8: Buffer;
  /** The public key as notary and Signet write it: SPKI DER (ecdsa) or raw 32 bytes (ed25519). */
  publicBytes: Buffer;
}

// PrivateKeyInfo { version 0, AlgorithmIdentifier { id-Ed25519 }, OCTET STRING { OCTET STRING (32) } }
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function notaryPrivateKeyToPkcs8(algorithm: string, plaintext: Buffer): ConvertedKey {
  if (algorithm === 'ecdsa') {
    let key;
    try {
      key = createPrivateKey({ key: plaintext, format: 'der', type: 'sec1' });
    } catch (e) {
      throw new PrivateKeyError(`not an EC private key (SEC1 DER): ${(e as Error).message}`);
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new PrivateKeyError('ecdsa keys must be on curve P-256');
    }
    return {
      keytype: 'ecdsa',
      pkcs8: key.export({ type: 'pkcs8', format: 'der' }),
      publicBytes: createPublicKey(key).export({ type: 'spki', format: 'der' }),
    };
  }
  if (algorithm === 'ed25519') {
    if (plaintext.length !== 96) {
      throw new PrivateKeyError(`ed25519 private keys from notary are 96 bytes (public ‖ private), not ${plaintext.length}`);
    }
    const publicPart = plaintext.subarray(0, 32);
    const seed = plaintext.subarray(32, 64);
    if (!plaintext.subarray(64, 96).equals(publicPart)) {
      throw new PrivateKeyError('ed25519 key: the two copies of the public key differ');
    }
    const pkcs8 = Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
    let spki: Buffer;
    try {
      spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
    } catch (e) {
      pkcs8.fill(0);
      throw new PrivateKeyError(`unusable ed25519 key: ${(e as Error).message}`);
    }
    const derived = spki.subarray(spki.length - 32);
    if (!derived.equals(publicPart)) {
      pkcs8.fill(0);
      throw new PrivateKeyError('ed25519 key: the private half does not belong to the public half');
    }
    return { keytype: 'ed25519', pkcs8, publicBytes: Buffer.from(derived) };
  }
  throw new PrivateKeyError(`unsupported key algorithm ${JSON.stringify(algorithm)} (Signet holds ecdsa and ed25519 keys)`);
}
