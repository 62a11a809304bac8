/** Base64 as Go's encoding/json reads it for []byte: keys and signatures are decoded with it. */

/**
 * Strict standard base64 with padding (what Go's encoding/json expects for []byte), or null.
 * Buffer.from(…, 'base64') silently skips invalid characters, which must not pass for a key or a
 * signature.
 */
export function decodeBase64(text: string): Buffer | null {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  return Buffer.from(text, 'base64');
}
