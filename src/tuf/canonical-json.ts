/**
 * Canonical JSON as Notary v1 (docker/go `json.MarshalCanonical`) and the TUF 1.0 libraries
 * (OLPC canonical JSON) produce it: the bytes every signature in a repository is computed over.
 *
 * - no insignificant whitespace;
 * - object keys sorted by the byte order of their UTF-8 encoding (not JS's UTF-16 order);
 * - strings escape only `"` and `\`; every other character, control characters and
 *   non-ASCII included, is written raw;
 * - numbers must be integers (anything else cannot be signed reproducibly).
 *
 * RFC 8785 (the `canonicalize` package) escapes control characters such as the newlines in
 * PEM keys, so its bytes differ from what clients sign; that is why this encoder exists.
 */

export class CanonicalJsonError extends Error {
  override name = 'CanonicalJsonError';
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function encodeString(s: string): string {
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

function encode(value: unknown, out: string[]): void {
  if (value === null) {
    out.push('null');
  } else if (typeof value === 'boolean') {
    out.push(value ? 'true' : 'false');
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new CanonicalJsonError(`cannot canonicalise non-integer or unsafe number ${value}`);
    }
    out.push(String(value));
  } else if (typeof value === 'string') {
    out.push(encodeString(value));
  } else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i > 0) out.push(',');
      encode(item, out);
    });
    out.push(']');
  } else if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort(compareUtf8);
    out.push('{');
    keys.forEach((key, i) => {
      if (i > 0) out.push(',');
      out.push(encodeString(key), ':');
      encode(obj[key], out);
    });
    out.push('}');
  } else {
    throw new CanonicalJsonError(`cannot canonicalise a value of type ${typeof value}`);
  }
}

/** The canonical JSON text of `value`. */
export function canonicalJsonString(value: unknown): string {
  const out: string[] = [];
  encode(value, out);
  return out.join('');
}

/** The canonical JSON bytes (UTF-8) of `value`: what signatures are computed over. */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(canonicalJsonString(value), 'utf8');
}
