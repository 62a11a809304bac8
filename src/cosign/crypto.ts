/**
 * Signing and verifying as sigstore/sigstore's signature package does for the key types cosign
 * accepts: ECDSA with SHA-256 and an ASN.1 DER signature (signature.LoadVerifier(key, SHA256)
 * uses SHA-256 whatever the curve), RSA PKCS#1 v1.5 with SHA-256, Ed25519 over the message itself.
 * No algorithm is stored next to a signature; the key decides.
 */
import { sign, verify, type KeyObject } from 'node:crypto';

export function signMessage(privateKey: KeyObject, message: Buffer): Buffer {
  return sign(privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256', message, privateKey);
}

export function verifyMessage(publicKey: KeyObject, message: Buffer, signature: Buffer): boolean {
  try {
    return verify(publicKey.asymmetricKeyType === 'ed25519' ? null : 'sha256', message, publicKey, signature);
  } catch {
    // A signature that is not even DER for this key: not a valid signature.
    return false;
  }
}
